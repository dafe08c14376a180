"""GET /v2/images (filters, sorting, paging, visibility scope)."""
from flask import Blueprint

bp = Blueprint("image_list", __name__, url_prefix="/v2/images")
