"""Failures the service reports, each with the HTTP status Glance answers with.

The service raises these without knowing about HTTP requests; api/errors.py renders
them the way Glance (webob) does. `detail=True` selects webob's second message shape,
where the status's default explanation precedes the message.
"""


class GlanceError(Exception):
    code = 500
    title = "Internal Server Error"
    explanation = "The server has either erred or is incapable of performing the requested operation."

    def __init__(self, message, detail=False, headers=None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = headers or {}


class BadRequest(GlanceError):
    code, title = 400, "Bad Request"
    explanation = ("The server could not comply with the request since it is either malformed or "
                   "otherwise incorrect.")


class Unauthorized(GlanceError):
    code, title = 401, "Unauthorized"
    explanation = "This server could not verify that you are authorized to access the document you requested."


class Forbidden(GlanceError):
    code, title = 403, "Forbidden"
    explanation = "Access was denied to this resource."


class NotFound(GlanceError):
    code, title = 404, "Not Found"
    explanation = "The resource could not be found."


class MethodNotAllowed(GlanceError):
    code, title = 405, "Method Not Allowed"
    explanation = "The method is not allowed for this resource."


class Conflict(GlanceError):
    code, title = 409, "Conflict"
    explanation = "There was a conflict when trying to complete your request."


class RequestEntityTooLarge(GlanceError):
    code, title = 413, "Request Entity Too Large"
    explanation = "The body of your request was too large for this server."


class UnsupportedMediaType(GlanceError):
    code, title = 415, "Unsupported Media Type"
    explanation = "The request media type is not supported by this server."


class HeaderFieldsTooLarge(GlanceError):
    code, title = 431, "Request Header Fields Too Large"
    explanation = "The request header fields were too large."


class Gone(GlanceError):
    code, title = 410, "Gone"
    explanation = "This resource is no longer available. No forwarding address is given."


class RangeNotSatisfiable(GlanceError):
    code, title = 416, "Requested Range Not Satisfiable"
    explanation = "The Range requested is not available."


class ServiceUnavailable(GlanceError):
    code, title = 503, "Service Unavailable"
    explanation = "The server is currently unavailable. Please try again at a later time."
