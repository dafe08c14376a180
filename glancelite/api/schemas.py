"""GET /v2/schemas/...: the JSON schemas clients build their requests from."""
from flask import Blueprint, jsonify

from glancelite import schemas
from glancelite.api import services
from glancelite.api.body import reject_body

bp = Blueprint("schemas", __name__, url_prefix="/v2/schemas")


@bp.before_request
def _no_body():
    reject_body()


@bp.get("/image")
def image():
    return jsonify(services()["images"].schema.json_schema())


@bp.get("/images")
def images():
    return jsonify(services()["images"].schema.images_json_schema())


@bp.get("/member")
def member():
    return jsonify(schemas.member_json_schema())


@bp.get("/members")
def members():
    return jsonify(schemas.members_json_schema())


@bp.get("/metadefs/namespace")
def metadefs_namespace():
    return jsonify(schemas.metadefs_namespace_json_schema())


@bp.get("/metadefs/resource_type")
def metadefs_resource_type():
    return jsonify(schemas.metadefs_resource_type_json_schema())
