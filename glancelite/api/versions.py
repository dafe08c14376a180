"""The version document: GET /versions (200) and / or any unknown path (300)."""
from flask import Blueprint, current_app, jsonify

from glancelite.api import base_url

bp = Blueprint("versions", __name__)

CURRENT = "v2.15"
SUPPORTED = ("v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0")
# With several stores (enabled_backends) Glance lists v2.13 ... v2.8 instead of v2.9.
MULTISTORE_SUPPORTED = ("v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8") + SUPPORTED[1:]
# Version prefixes clients may put in the path (/v2.1/images); all mean /v2.
ACCEPTED_PREFIXES = frozenset(("v2", CURRENT) + SUPPORTED)


def accepted_prefixes(multistore):
    return frozenset(("v2", CURRENT) + (MULTISTORE_SUPPORTED if multistore else SUPPORTED))


def version_document():
    href = f"{base_url()}/v2/"
    versions = [{"id": CURRENT, "status": "CURRENT"}]
    multistore = bool(current_app.config["GLANCELITE"]["DEFAULT"]["enabled_backends"])
    versions += [{"id": v, "status": "SUPPORTED"}
                 for v in (MULTISTORE_SUPPORTED if multistore else SUPPORTED)]
    for version in versions:
        version["links"] = [{"rel": "self", "href": href}]
    return {"versions": versions}


def multiple_choices():
    response = jsonify(version_document())
    response.status_code = 300
    return response


@bp.get("/versions")
def versions():
    return jsonify(version_document())


@bp.get("/")
def root():
    return multiple_choices()
