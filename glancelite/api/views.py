"""Image documents as Glance renders them: extra properties first, then core attributes."""
from flask import current_app

from glancelite.api import ctx, services
from glancelite.timeutil import isotime


def image_view(image):
    """The document the current caller sees: properties it may not read are left out."""
    conf = current_app.config["GLANCELITE"]
    body = services()["images"].authz.readable_properties(ctx(), image)
    body.update({
        "name": image.name,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "visibility": image.visibility,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "status": image.status,
        "checksum": image.checksum,
        "protected": image.protected,
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
        "owner": image.owner,
        "os_hidden": image.os_hidden,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "id": image.id,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
    })
    locations = image.locations
    if conf["DEFAULT"]["show_multiple_locations"]:
        body["locations"] = [{"url": loc.url, "metadata": loc.meta_data} for loc in locations]
    if conf["DEFAULT"]["show_image_direct_url"] and locations:
        body["direct_url"] = locations[0].url
    body["tags"] = sorted(tag.value for tag in image.tags)
    body["self"] = f"/v2/images/{image.id}"
    body["file"] = f"/v2/images/{image.id}/file"
    body["schema"] = "/v2/schemas/image"
    stores = services()["images"].store.stores_attribute(locations)  # multi-store only
    if stores:
        body["stores"] = stores
    return body
