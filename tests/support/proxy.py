"""A loopback TCP proxy for data-path tests: records what clients send, can cut a response
short (once) after N bytes, and can slow responses down."""
import socket
import threading
import time


class Proxy:
    """Forward 127.0.0.1:<port> to `upstream` (host, port).

    drop_after: close the first connection that carries more than this many response bytes
    right there (later connections pass untouched). rate: response bytes per second per
    connection (None: as fast as it goes). `requests` holds every client-to-server byte
    stream, one bytes object per connection.
    """

    def __init__(self, upstream, drop_after=None, rate=None):
        self.upstream = upstream
        self.drop_after = drop_after
        self.rate = rate
        self.dropped = 0
        self.requests = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            sent = bytearray()
            with self._lock:
                self.requests.append(sent)
            threading.Thread(target=self._pump, args=(client, server, sent), daemon=True).start()
            threading.Thread(target=self._answer, args=(server, client), daemon=True).start()

    def _pump(self, client, server, record):
        try:
            while data := client.recv(65536):
                record.extend(data)
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(server)

    def _answer(self, server, client):
        passed, started = 0, time.monotonic()
        try:
            while data := server.recv(65536):
                with self._lock:
                    cut = self.drop_after is not None and not self.dropped \
                        and passed + len(data) > self.drop_after
                    if cut:
                        self.dropped += 1
                if cut:
                    client.sendall(data[:self.drop_after - passed])
                    break
                client.sendall(data)
                passed += len(data)
                if self.rate:
                    delay = passed / self.rate - (time.monotonic() - started)
                    if delay > 0:
                        time.sleep(delay)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)

    def request_lines(self):
        """Every request head (request line and headers) seen, as text."""
        heads = []
        with self._lock:
            streams = [bytes(stream) for stream in self.requests]
        for stream in streams:
            for part in stream.split(b"\r\n\r\n"):
                if part[:4] in (b"GET ", b"HEAD", b"PUT ", b"POST", b"PATC", b"DELE"):
                    heads.append(part.decode("latin-1"))
        return heads

    def close(self):
        self._closed = True
        _close(self._listener)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
