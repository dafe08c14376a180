"""Error responses shaped like Glance's (webob): the body follows the Accept header.

HTML for no Accept, */* or text/html (glanceclient prints it), flat JSON for
application/json (openstacksdk), plain text otherwise.
"""
import json

from flask import Response

_HTML = ("<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
         "  {message}\n </body>\n</html>")


def _preferred_type(accept_header, accept):
    if not accept_header or not accept_header.strip():
        return "text/html"
    best = accept.best_match(["text/html", "application/json", "text/plain"])
    return best or "text/plain"


def error_response(error, accept_header, accept):
    """Render a glancelite.errors.GlanceError for the client's Accept header."""
    status = f"{error.code} {error.title}"
    if error.detail:
        message = f"{error.explanation}<br /><br />\n{error.message}\n\n"
        plain = f"{error.explanation}\n\n{error.message}"
    elif error.code == 415:  # webob's own 415 page: the break comes after the message
        message = f"{error.message}\n<br /><br />\n"
        plain = error.message
    else:
        message = f"{error.message}<br /><br />\n\n\n"
        plain = error.message
    kind = _preferred_type(accept_header, accept)
    if kind == "application/json":
        body = json.dumps({"message": message, "code": status, "title": error.title})
    elif kind == "text/html":
        body = _HTML.format(status=status, message=message)
    else:
        body = f"{status}\n\n{plain}\n\n   "
        kind = "text/plain"
    mimetype = kind if kind == "application/json" else f"{kind}; charset=UTF-8"
    response = Response(body, status=error.code, content_type=mimetype)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
