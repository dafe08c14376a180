# gunicorn settings for glancelite-api. bind, workers and the header size limit come from
# glancelite.conf ([DEFAULT] bind_host, bind_port, workers, max_header_line).
worker_class = "gthread"
threads = 8
# Image transfers can be slow; a worker is only killed when it stops heartbeating.
timeout = 120
graceful_timeout = 30
keepalive = 5
# glancelite logs one line per request itself (with the request id).
accesslog = None
errorlog = "-"
