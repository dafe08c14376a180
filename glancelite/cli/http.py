"""The HTTP session: endpoint and token, one place that turns error answers into messages.

Errors read like glanceclient's (`HTTP 404 Not Found: No image found with ID x`), whatever
shape the server chose for the body: Glance's flat JSON, a nested `{"error": {...}}`, webob's
HTML page, or plain text. A 401 is glanceclient's `Invalid OpenStack Identity credentials.`
"""
import html
import re
import sys
from http import HTTPStatus
from urllib.parse import quote

import requests

from glancelite.cli.errors import CommandError, HTTPError

USER_AGENT = "glancelite-cli"
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def seg(text):
    """One URL path segment, percent-encoded (ids and tags may hold `/`, `?` or `#`)."""
    return quote(str(text), safe="")


class Client:
    """A requests.Session bound to an image API endpoint (the part before `/v2`)."""

    def __init__(self, endpoint, token=None, timeout=600.0, debug=False):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.debug = debug
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if token:
            self.session.headers["X-Auth-Token"] = token

    def url(self, path):
        return path if "://" in path else self.endpoint + path

    def request(self, method, path, *, stream=False, **kwargs):
        """Send a request; an answer >= 400 raises HTTPError."""
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, stream=stream, **kwargs)
        except requests.Timeout as exc:
            raise CommandError(f"Request to {url} timed out after {self.timeout:g}s") from exc
        except requests.ConnectionError as exc:
            raise CommandError(f"Unable to establish connection to {url}: {_reason(exc)}") from exc
        if self.debug:
            print(f"DEBUG: {method} {url} -> {response.status_code} "
                  f"x-openstack-request-id: {response.headers.get('x-openstack-request-id', '-')}",
                  file=sys.stderr)
        if response.status_code >= 400:
            detail = error_detail(response)
            response.close()
            if response.status_code == 401:
                raise HTTPError(401, detail, message="Invalid OpenStack Identity credentials.")
            raise HTTPError(response.status_code, detail)
        return response

    def json(self, method, path, **kwargs):
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def get(self, path, **kwargs):
        return self.json("GET", path, **kwargs)


def _reason(exc):
    """The innermost cause of a connection failure (e.g. `[Errno 111] Connection refused`)."""
    cause = exc.args[0] if exc.args else exc
    reason = getattr(cause, "reason", None)
    return str(reason or cause)


def _heading(code):
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _lines(text):
    """Tags stripped, entities decoded, blank and repeated lines dropped."""
    text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text or "")))
    seen = []
    for line in (part.strip() for part in text.splitlines()):
        if line and line not in seen:
            seen.append(line)
    return seen


def error_detail(response):
    """`<code> <title>: <message>` from an error response of any body shape."""
    heading = _heading(response.status_code)
    content_type = response.headers.get("Content-Type", "")
    lines = []
    if "json" in content_type:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            heading = body.get("code") if isinstance(body.get("code"), str) else heading
            lines = _lines(body["message"])
        elif isinstance(body, dict):
            for value in body.values():
                if isinstance(value, dict) and value.get("message"):
                    lines += _lines(str(value["message"]))
        if not lines and body is None:
            lines = _lines(response.text)
    else:
        lines = _lines(response.text)
    lines = [line for line in lines if line.lower() != heading.lower()]
    return ": ".join([heading, *lines])
