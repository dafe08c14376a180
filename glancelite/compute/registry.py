"""The Glance v2 API as the fetcher needs it, on the standard library's http.client.

Credentials (X-Auth-Token and the identity headers) are sent only to the configured api
servers, compared by scheme, host and port. A redirect elsewhere (a presigned S3 URL, say)
is followed without them; a redirect that is not http(s) is refused. Like nova, the
servers are tried in a shuffled order and a call that cannot start (connection refused,
503) moves on to the next one, `num_retries` times.
"""
import http.client
import json
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

LOG = logging.getLogger(__name__)

USER_AGENT = "glancelite-compute"
MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUSES = (502, 503, 504)


class RegistryError(Exception):
    """A call to the registry failed; `status` is the HTTP status, or None."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class NotFound(RegistryError):
    pass


class Forbidden(RegistryError):
    pass


class Unreachable(RegistryError):
    """No api server answered (connection errors, timeouts, 5xx)."""


NETWORK_ERRORS = (OSError, http.client.HTTPException, socket.timeout)


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url):
        if "//" not in url:          # nova accepts "host:port"
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path.rstrip("/")
        if path.endswith("/v2"):
            path = path[:-3]
        return cls(parts.scheme, parts.hostname.lower(), port, path)

    def same(self, other):
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


class Response:
    """An open response; read with readinto(), then close()."""

    def __init__(self, connection, response, url):
        self.connection = connection
        self.raw = response
        self.url = url
        self.status = response.status
        self.headers = response.headers

    def readinto(self, buffer):
        return self.raw.readinto(buffer)

    def read(self, limit=1 << 20):
        return self.raw.read(limit)

    def close(self):
        try:
            self.raw.close()
        finally:
            self.connection.close()


def _error_message(response):
    """The message of a Glance error body (JSON or HTML/text), kept short."""
    try:
        body = response.read(65536)
    except NETWORK_ERRORS:
        body = b""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
        if isinstance(document, dict):
            inner = document.get("error") if isinstance(document.get("error"), dict) else document
            message = inner.get("message") or inner.get("title")
            if message:
                return str(message)
    except ValueError:
        pass
    text = " ".join(text.replace("<", " <").split())
    return text[:300] or f"HTTP {response.status}"


class Registry:
    def __init__(self, servers, auth_headers=None, timeout=60.0, retries=3, tls=None):
        if not servers:
            raise ValueError("no api server configured ([glance] api_servers)")
        self.origins = [Origin.parse(server) for server in servers]
        self.auth_headers = dict(auth_headers or {})
        self.timeout = timeout
        self.retries = retries
        self.ssl_context = _ssl_context(tls or {})
        self.retry_delay = 0.2

    # -- plumbing ------------------------------------------------------------------------

    def _connection(self, scheme, host, port):
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _send(self, origin_of_credentials, url, method, headers):
        """One request to an absolute URL; credentials only if it is a configured origin."""
        target = Origin.parse(url)
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
        if origin_of_credentials is not None and target.same(origin_of_credentials):
            all_headers.update(self.auth_headers)
        connection = self._connection(target.scheme, target.host, target.port)
        try:
            connection.request(method, path, headers=all_headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return Response(connection, response, url)

    def request(self, method, path, headers=None, follow_redirects=False):
        """Send to the api servers in turn until one answers (not 502/503/504).

        `path` is relative to the server (e.g. "/v2/images/ID"). Returns an open Response
        whatever its status; the caller maps errors.
        """
        origins = list(self.origins)
        random.shuffle(origins)
        attempts = max(1, self.retries + 1)
        last = None
        for attempt in range(attempts):
            origin = origins[attempt % len(origins)]
            url = f"{origin}{path}"
            try:
                response = self._send(origin, url, method, headers or {})
                hops = 0
                while follow_redirects and response.status in REDIRECTS and hops < MAX_REDIRECTS:
                    location = response.headers.get("Location")
                    response.close()
                    if not location:
                        raise RegistryError(f"redirect without Location from {url}")
                    url = urljoin(url, location)
                    if urlsplit(url).scheme not in ("http", "https"):
                        raise RegistryError(f"refusing redirect to {url}")
                    if not Origin.parse(url).same(origin):
                        LOG.info("following redirect to %s without credentials",
                                 urlsplit(url)._replace(query="").geturl())
                    response = self._send(origin, url, method, headers or {})
                    hops += 1
            except NETWORK_ERRORS as exc:
                last = Unreachable(f"{origin}: {exc.__class__.__name__}: {exc}")
                LOG.info("api server %s: %s", origin, exc)
            else:
                if response.status not in RETRY_STATUSES:
                    return response
                last = Unreachable(f"{origin}: HTTP {response.status}: "
                                   f"{_error_message(response)}", response.status)
                response.close()
            if attempt + 1 < attempts:
                time.sleep(self.retry_delay * (attempt + 1))
        raise last

    def _checked(self, response, what):
        """Raise the error for a non-2xx response (closing it)."""
        if response.status < 300:
            return response
        message = _error_message(response)
        response.close()
        status = response.status
        text = f"{what}: HTTP {status}: {message}"
        if status == 404:
            raise NotFound(text, status)
        if status in (401, 403):
            raise Forbidden(text, status)
        if status >= 500:
            raise Unreachable(text, status)
        raise RegistryError(text, status)

    def get_json(self, path, what):
        response = self._checked(self.request("GET", path), what)
        try:
            body = response.read(16 << 20)
        finally:
            response.close()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RegistryError(f"{what}: the server did not answer JSON") from exc

    # -- the calls -----------------------------------------------------------------------

    def image(self, image_id):
        return self.get_json(f"/v2/images/{quote(image_id, safe='')}", f"image {image_id}")

    def locations(self, image_id):
        """GET /v2/images/ID/locations (Glance 2.17, service role); None when unavailable."""
        response = self.request("GET", f"/v2/images/{quote(image_id, safe='')}/locations")
        try:
            if response.status != 200:
                return None
            document = json.loads(response.read(16 << 20))
        except (ValueError, *NETWORK_ERRORS):
            return None
        finally:
            response.close()
        return document if isinstance(document, list) else None

    def images(self, page_size=200):
        """Every image the caller can see (follows `next`)."""
        path = f"/v2/images?limit={page_size}"
        while path:
            page = self.get_json(path, "image list")
            yield from page.get("images", [])
            following = page.get("next")
            path = following if following and following.startswith("/") else None

    def open_data(self, image_id, offset=0, etag=None):
        """GET /v2/images/ID/file from `offset` (Range, guarded by If-Range when `etag`).

        Returns the open Response for 200/206; 204 (no data) and errors raise.
        """
        headers = {"Accept": "application/octet-stream"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if etag:
                headers["If-Range"] = etag
        response = self.request("GET", f"/v2/images/{quote(image_id, safe='')}/file",
                                headers=headers, follow_redirects=True)
        if response.status == 204:
            response.close()
            raise NotFound(f"image {image_id} has no data (HTTP 204)", 204)
        return self._checked(response, f"image {image_id} data")


def _ssl_context(tls):
    context = ssl.create_default_context(cafile=tls.get("cafile") or None)
    if tls.get("certfile"):
        context.load_cert_chain(tls["certfile"], tls.get("keyfile") or None)
    if tls.get("insecure"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
