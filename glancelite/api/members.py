"""/v2/images/{id}/members and /v2/images/{id}/members/{member}."""
from flask import Blueprint, jsonify

from glancelite.api import ctx, services
from glancelite.api.body import json_body, reject_body
from glancelite.timeutil import isotime

bp = Blueprint("members", __name__, url_prefix="/v2/images")


def member_view(row):
    return {
        "member_id": row.member,
        "image_id": row.image_id,
        "status": row.status,
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
        "schema": "/v2/schemas/member",
    }


def _members():
    return services()["members"]


@bp.get("/<image_id>/members")
def list_members(image_id):
    reject_body()
    rows = _members().list(ctx(), image_id)
    return jsonify({"members": [member_view(row) for row in rows],
                    "schema": "/v2/schemas/members"})


@bp.post("/<image_id>/members")
def add(image_id):
    return jsonify(member_view(_members().add(ctx(), image_id, json_body())))


# `path:` so a member id holding a slash (accepted at POST) can still be addressed.
@bp.get("/<image_id>/members/<path:member_id>")
def show(image_id, member_id):
    reject_body()
    return jsonify(member_view(_members().get(ctx(), image_id, member_id)))


@bp.put("/<image_id>/members/<path:member_id>")
def update(image_id, member_id):
    return jsonify(member_view(_members().update(ctx(), image_id, member_id, json_body())))


@bp.delete("/<image_id>/members/<path:member_id>")
def delete(image_id, member_id):
    reject_body()
    _members().delete(ctx(), image_id, member_id)
    return "", 204
