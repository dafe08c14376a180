"""GET /v2/images: parse the query, ask the listing service, render the page and its links."""
from urllib.parse import urlencode

from flask import Blueprint, jsonify, request

from glancelite.api import ctx, list_query, services
from glancelite.api.views import image_view

bp = Blueprint("image_list", __name__, url_prefix="/v2/images")


@bp.get("")
def index():
    pairs = list_query.query_pairs(request.query_string)
    page = services()["listing"].list(ctx(), list_query.parse(pairs))
    body = {"images": [image_view(image) for image in page.images]}
    body.update(_links(pairs, page.next_marker))
    return jsonify(body)


def _links(pairs, next_marker):
    """`first` and `next` rebuilt from the query in request order, without the marker;
    `next` appends the new marker. Unlike Glance, repeated parameters (tag, sort_key) are
    kept, so following `next` never changes the filter or the order."""
    params = [(key, value) for key, value in pairs if key != "marker"]
    links = {"first": _images_url(params), "schema": "/v2/schemas/images"}
    if next_marker is not None:
        links["next"] = _images_url(params + [("marker", next_marker)])
    return links


def _images_url(params):
    return f"/v2/images?{urlencode(params)}" if params else "/v2/images"
