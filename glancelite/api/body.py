"""Reading JSON request bodies: size-limited, with Glance's messages for bad input."""
import json

from flask import current_app, request

from glancelite.errors import BadRequest, RequestEntityTooLarge


def _read_limited():
    limit = current_app.config["GLANCELITE"]["oslo_middleware"]["max_request_body_size"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge("Request is too large.")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge("Request is too large.")
    return data


def json_body(required=True):
    """The decoded JSON body; None when absent and not required."""
    data = _read_limited()
    if not data.strip():
        if required:
            raise BadRequest("Body expected in request.")
        return None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest("Malformed JSON in request body.") from None
    if not isinstance(value, (dict, list)):
        raise BadRequest("Unexpected body type. Expected list/dict.")
    if _contains_nul(value):
        raise BadRequest("Null characters are not allowed in request bodies.")
    return value


def _contains_nul(value):
    """NUL cannot be stored in a text column (PostgreSQL refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def json_object(required=True):
    value = json_body(required)
    if value is not None and not isinstance(value, dict):
        raise BadRequest("Request body must be a JSON object.")
    return value


def reject_body():
    """Routes that take no body answer 400 to one, as Glance does."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if (request.content_length or 0) > 0 or (chunked and request.stream.read(1)):
        raise BadRequest("A body is not expected with this request.")
