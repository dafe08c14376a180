"""Upload bodies read straight into the caller's buffers: `readinto(buffer) -> bytes read`.

gunicorn's body reader hands out new bytes objects and copies every byte three or four times
on the way (into a BytesIO, out with getvalue(), sliced twice): for a 1 GiB upload that is
about a CPU-second, a quarter of the upload's cost. So for a Content-Length body under
gunicorn we recv_into() the caller's buffer from the socket ourselves, after whatever
gunicorn has already read ahead, and keep gunicorn's own reader in step after every read:
if the upload stops early (refused, too large, cut off), gunicorn still knows exactly how
much of the body is left to drain before the connection's next request. Chunked bodies and
other WSGI servers are read through wsgi.input.
"""


def body_reader(environ, content_length):
    """`readinto` for this request's body; it returns 0 at the end of the body."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    if (sock is not None and content_length and type(reader).__name__ == "LengthReader"
            and getattr(reader, "length", None) == content_length
            and hasattr(getattr(reader, "unreader", None), "take_buffered")
            and not body.buf.tell()):
        return _GunicornBody(sock, reader).readinto
    read = body.read

    def readinto(buffer):
        data = read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
    return readinto


class _GunicornBody:
    """A Content-Length body under gunicorn, read past its reader (gunicorn.http.body's
    LengthReader: `length` is what is left of the body, `unreader` holds read-ahead)."""

    def __init__(self, sock, reader):
        self.sock = sock
        self.reader = reader

    def readinto(self, buffer):
        left = self.reader.length
        if left <= 0:
            return 0
        ahead = self.reader.unreader.take_buffered()
        if ahead:
            taken = min(len(buffer), len(ahead), left)
            buffer[:taken] = ahead[:taken]
            if taken < len(ahead):
                self.reader.unreader.unread(ahead[taken:])
        else:
            taken = self.sock.recv_into(memoryview(buffer)[:min(len(buffer), left)])
        self.reader.length = left - taken
        return taken
