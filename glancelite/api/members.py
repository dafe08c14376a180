"""/v2/images/{id}/members."""
from flask import Blueprint

bp = Blueprint("members", __name__, url_prefix="/v2/images")
