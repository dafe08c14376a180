"""HTTP layer: thin blueprints that parse requests, call a service and shape responses."""
from flask import current_app, g, request


def services():
    """The service objects create_app wired for this application."""
    return current_app.extensions["glancelite"]


def ctx():
    """The RequestContext of the current request."""
    return g.context


def base_url():
    """`public_endpoint` if configured, else the URL the client used to reach us."""
    endpoint = current_app.config["GLANCELITE"]["DEFAULT"]["public_endpoint"]
    return (endpoint or request.host_url).rstrip("/")
