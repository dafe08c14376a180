"""GET /v2/info/stores and /v2/info/stores/detail (Glance's multi-store discovery).

Without `enabled_backends` both answer 404 "Multi backend is not supported at this
site.", as Glance does. The detail (types, weights, each store's properties such as the
file store's directory) is for admins: policy `stores_info_detail` when the policy file
defines it, else Glance's default `role:admin`.
"""
from flask import Blueprint, jsonify

from glancelite.api import ctx, services
from glancelite.api.body import reject_body
from glancelite.errors import Forbidden, NotFound

bp = Blueprint("stores_info", __name__, url_prefix="/v2/info")

DETAIL_POLICY = "stores_info_detail"


def _stores():
    registry = services()["images"].store
    if not registry.multi:
        raise NotFound("Multi backend is not supported at this site.")
    return registry


@bp.get("/stores")
def stores():
    reject_body()
    return jsonify({"stores": _stores().describe()})


@bp.get("/stores/detail")
def stores_detail():
    reject_body()
    registry = _stores()
    authz, context = services()["images"].authz, ctx()
    if DETAIL_POLICY in authz.policy.names:
        authz.require(context, DETAIL_POLICY, {"project_id": context.owner})
    elif not context.is_admin:
        raise Forbidden(f"You are not authorized to complete {DETAIL_POLICY} action.")
    return jsonify({"stores": registry.describe(detail=True)})
