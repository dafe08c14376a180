"""/v2/images and /v2/images/{id}: create, show, delete, tags."""
from flask import Blueprint, jsonify

from glancelite.api import base_url, ctx, services
from glancelite.api.body import json_object, reject_body
from glancelite.api.views import image_view

bp = Blueprint("images", __name__, url_prefix="/v2/images")


def no_content():
    return "", 204


@bp.post("")
def create():
    image = services()["images"].create(ctx(), json_object())
    response = jsonify(image_view(image))
    response.status_code = 201
    response.headers["Location"] = f"{base_url()}/v2/images/{image.id}"
    stores = services()["images"].store
    if stores.multi:
        response.headers["OpenStack-image-store-ids"] = ",".join(stores.names)
    return response


@bp.get("/<image_id>")
def show(image_id):
    reject_body()
    return jsonify(image_view(services()["images"].show(ctx(), image_id)))


@bp.delete("/<image_id>")
def delete(image_id):
    reject_body()
    services()["images"].delete(ctx(), image_id)
    return no_content()


@bp.put("/<image_id>/tags/<path:tag>")
def add_tag(image_id, tag):
    reject_body()
    services()["images"].add_tag(ctx(), image_id, tag)
    return no_content()


@bp.delete("/<image_id>/tags/<path:tag>")
def delete_tag(image_id, tag):
    reject_body()
    services()["images"].delete_tag(ctx(), image_id, tag)
    return no_content()
