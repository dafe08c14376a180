# gunicorn tuning for glancelite-api, read from the directory of the glancelite config file.
# bind, workers and the header size limit come from glancelite.conf ([DEFAULT] bind_host,
# bind_port, workers, max_header_line). glancelite-api starts from these defaults;
# uncomment a line to change one:
#
# worker_class = "gthread"
# threads = 8            # concurrent requests per worker; transfers hold a thread each
# timeout = 120          # seconds without a worker heartbeat before it is restarted
# graceful_timeout = 30
# keepalive = 5
# accesslog = None       # glancelite logs one line per request itself
# errorlog = "-"
# control_socket_disable = False            # for gunicornc; then give each instance its own
# control_socket = "/run/glancelite/gunicorn.ctl"   # path (the default is shared per user)
