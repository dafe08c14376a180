"""/v2/images/{id}/file (upload, download, HEAD) and /actions/{deactivate,reactivate}.

Downloads from the filesystem store go out through `wsgi.file_wrapper` with the file
positioned at the range start and an exact Content-Length, so gunicorn sends them with
sendfile(2) — ranges included (Flask's send_file falls back to 8 KiB writes for ranges).
"""
from flask import Blueprint, Response, request
from werkzeug.http import parse_content_range_header, parse_range_header, quote_etag

from glancelite.api import ctx, services
from glancelite.api.body import reject_body
from glancelite.api.body_reader import body_reader
from glancelite.errors import BadRequest, RangeNotSatisfiable, UnsupportedMediaType

bp = Blueprint("image_data", __name__, url_prefix="/v2/images")

OCTET_STREAM = "application/octet-stream"
SEND_BLOCK = 1 << 20


def _expected_size():
    """The size the client announced: x-openstack-image-size, else Content-Length."""
    announced = request.headers.get("x-openstack-image-size")
    length = request.content_length
    if announced is None:
        return length
    try:
        size = int(announced)
    except ValueError:
        size = -1
    if size < 0:
        raise BadRequest("Invalid or missing image size in request headers.")
    if length is not None and length != size:
        raise BadRequest(f"x-openstack-image-size ({size}) does not match Content-Length ({length}).")
    return size


@bp.put("/<image_id>/file")
def upload(image_id):
    media_type = request.mimetype or "text/plain"
    if media_type != OCTET_STREAM:
        raise UnsupportedMediaType(f"The request media type {media_type} is not supported by "
                                   f"this server.")
    expected_size = _expected_size()
    readinto = body_reader(request.environ, request.content_length)
    services()["data"].upload(ctx(), image_id, readinto, expected_size,
                              store=request.headers.get("X-Image-Meta-Store"))
    return "", 204


def _requested_range(size, etag):
    """(start, end exclusive) of a satisfiable single range, or None for the whole image."""
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != quote_etag(etag or ""):
        return None
    header = request.headers.get("Range")
    if header is None:
        legacy = request.headers.get("Content-Range")
        if legacy is None:
            return None
        parsed = parse_content_range_header(legacy)
        if parsed is None or parsed.start >= size or parsed.stop > size:
            raise RangeNotSatisfiable(f"Invalid Content-Range {legacy!r} for an image of {size} "
                                      f"bytes.", headers={"Content-Range": f"bytes */{size}"})
        return parsed.start, parsed.stop
    parsed = parse_range_header(header)
    if parsed is not None and len(parsed.ranges) > 1:
        raise BadRequest("Requests with multiple ranges are not supported in Glance. You may "
                         "make multiple single-range requests instead.")
    usable = parsed is not None and parsed.units == "bytes"
    bounds = _clip(parsed.ranges[0], size) if usable else None
    if bounds is None:
        raise RangeNotSatisfiable(
            f"Invalid start position in Range header. Start position MUST be in the inclusive "
            f"range [0, {max(size - 1, 0)}].", detail=True,
            headers={"Content-Range": f"bytes */{size}"})
    return bounds


def _clip(byte_range, size):
    """A parsed range cut to the image: a suffix longer than the image means all of it
    (as Glance answers), an end past EOF stops at EOF; None when nothing is left."""
    start, stop = byte_range
    if start < 0:
        start, stop = max(size + start, 0), size
    else:
        stop = size if stop is None else min(stop, size)
    return (start, stop) if start < stop else None


def _body(download, start, length):
    """The response body: a file for sendfile when the server stops at Content-Length."""
    source = download.open(start, length)
    to_end = start + length == download.size
    gunicorn = request.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")
    wrapper = request.environ.get("wsgi.file_wrapper")
    if hasattr(source, "fileno") and wrapper is not None and (to_end or gunicorn):
        return wrapper(source, SEND_BLOCK)
    return _bounded(source, length)


def _bounded(source, length):
    """Yield exactly `length` bytes of a file or chunk iterator, then close it."""
    try:
        chunks = iter(lambda: source.read(SEND_BLOCK), b"") if hasattr(source, "read") else source
        for chunk in chunks:
            if length <= 0:
                break
            yield chunk[:length]
            length -= len(chunk)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


@bp.get("/<image_id>/file")
def download(image_id):
    reject_body()
    found = services()["data"].download(ctx(), image_id)
    if found is None:
        return Response(status=204)
    headers = {"Accept-Ranges": "bytes"}
    if found.etag:
        headers["ETag"] = quote_etag(found.etag)
        if request.if_none_match.contains(found.etag):
            return Response(status=304, headers=headers)
    bounds = _requested_range(found.size, found.etag)
    if bounds is None:
        start, stop, status = 0, found.size, 200
        if found.checksum:
            headers["Content-MD5"] = found.checksum
    else:
        (start, stop), status = bounds, 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{found.size}"
    headers["Content-Length"] = str(stop - start)
    body = [] if request.method == "HEAD" else _body(found, start, stop - start)
    return Response(body, status=status, headers=headers, content_type=OCTET_STREAM,
                    direct_passthrough=True)


@bp.post("/<image_id>/actions/deactivate")
def deactivate(image_id):
    reject_body()
    services()["data"].deactivate(ctx(), image_id)
    return "", 204


@bp.post("/<image_id>/actions/reactivate")
def reactivate(image_id):
    reject_body()
    services()["data"].reactivate(ctx(), image_id)
    return "", 204
