"""Upload bodies under gunicorn: read from the socket past gunicorn's reader, which is kept
in step, so the bytes after the body stay for the next request. A gunicorn upgrade that
changes its reader classes would make body_reader fall back to wsgi.input: the first test
says so instead of the upload silently getting slower."""
import socket

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from glancelite.api.body_reader import _GunicornBody, body_reader


@pytest.fixture
def connection():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def parsed(server, client, wire):
    """The first request gunicorn parses from `wire`, with its environ and the parser."""
    client.sendall(wire)
    config = Config()
    parser = RequestParser(config, server, ("127.0.0.1", 1))
    request = next(parser)
    _response, environ = wsgi.create(request, server, ("127.0.0.1", 1), ("127.0.0.1", 2), config)
    return environ, parser


def read_all(readinto, size=4):
    buffer, out = bytearray(size), b""
    while received := readinto(memoryview(buffer)):
        out += buffer[:received]
    return out


def test_content_length_body_is_read_from_the_socket_and_no_further(connection):
    server, client = connection
    body = b"0123456789" * 1000
    head = f"PUT /v2/images/x/file HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n\r\n"
    following = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    environ, parser = parsed(server, client, head.encode() + body + following)
    readinto = body_reader(environ, len(body))
    assert isinstance(readinto.__self__, _GunicornBody), "gunicorn's reader changed shape"
    assert read_all(readinto) == body
    assert environ["wsgi.input"].read() == b""  # nothing left for gunicorn to drain
    assert next(parser).path == "/next"


def test_a_body_left_half_read_is_drained_by_gunicorn(connection):
    server, client = connection
    body = b"abcdefghij" * 100
    head = f"PUT /v2/images/x/file HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n\r\n"
    environ, parser = parsed(server, client, head.encode() + body + b"GET /next HTTP/1.1\r\n\r\n")
    readinto = body_reader(environ, len(body))
    buffer = bytearray(300)
    taken = readinto(memoryview(buffer))
    assert buffer[:taken] == body[:taken]
    assert environ["wsgi.input"].read() == body[taken:]  # what a refused upload leaves
    assert next(parser).path == "/next"


def test_chunked_bodies_go_through_wsgi_input(connection):
    server, client = connection
    wire = (b"PUT /v2/images/x/file HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    environ, _parser = parsed(server, client, wire)
    readinto = body_reader(environ, None)
    assert not isinstance(getattr(readinto, "__self__", None), _GunicornBody)
    assert read_all(readinto) == b"hello world"
