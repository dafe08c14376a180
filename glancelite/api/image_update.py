"""PATCH /v2/images/{id} (Glance's JSON-patch dialects)."""
from flask import Blueprint

bp = Blueprint("image_update", __name__, url_prefix="/v2/images")
