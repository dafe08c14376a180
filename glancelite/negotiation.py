"""WSGI middleware for Glance's version negotiation in the path.

/v2.1/images is served as /v2/images; /v2 redirects to /v2/. Paths with an unknown
version fall through to the app, which answers them with the 300 version document.
"""


class VersionNegotiation:
    def __init__(self, app, accepted_prefixes):
        self.app = app
        self.accepted = accepted_prefixes

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/v2":
            location = environ.get("SCRIPT_NAME", "") + "/v2/"
            start_response("302 Found", [("Location", location), ("Content-Length", "0")])
            return [b""]
        first, sep, rest = path.lstrip("/").partition("/")
        if sep and first != "v2" and first in self.accepted:
            environ["PATH_INFO"] = "/v2/" + rest
        return self.app(environ, start_response)
