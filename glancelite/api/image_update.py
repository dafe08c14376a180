"""PATCH /v2/images/{id} (Glance's JSON-patch dialects)."""
from flask import Blueprint, jsonify, request

from glancelite import patch
from glancelite.api import ctx, services
from glancelite.api.body import json_body
from glancelite.api.views import image_view
from glancelite.errors import UnsupportedMediaType

bp = Blueprint("image_update", __name__, url_prefix="/v2/images")


@bp.patch("/<image_id>")
def update(image_id):
    media_type = _patch_media_type()
    image = services()["updates"].update(ctx(), image_id, media_type, json_body())
    return jsonify(image_view(image))


def _patch_media_type():
    """The request's media type if it is one of the two dialects, else 415 naming both."""
    if request.mimetype in patch.MEDIA_TYPES:
        return request.mimetype
    shown = request.mimetype if "Content-Type" in request.headers else "text/plain"
    raise UnsupportedMediaType(
        f"The request media type {shown} is not supported by this server.",
        headers={"Accept-Patch": ", ".join(patch.MEDIA_TYPES)})
