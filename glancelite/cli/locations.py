"""location-add/delete/update: PATCH /locations (servers with show_multiple_locations)."""
import json

from glancelite.cli.errors import CommandError
from glancelite.cli.http import seg
from glancelite.cli.images import PATCH_TYPE, image_formatters
from glancelite.cli.output import add_format_options, print_dict


def _metadata(text):
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CommandError(f"Metadata must be a JSON object, not {text!r}")
    return value


def _patch(client, image_id, patch):
    return client.json("PATCH", f"/v2/images/{seg(image_id)}", json=patch,
                       headers={"Content-Type": PATCH_TYPE})


def _locations(client, image_id):
    image = client.get(f"/v2/images/{seg(image_id)}")
    if "locations" not in image:
        raise CommandError(f"Image {image_id} shows no locations: the server does not show "
                           f"multiple locations (show_multiple_locations)")
    return image["locations"]


def _show(image, args):
    print_dict(image, args.format, args.columns, formatters=image_formatters())


def do_location_add(client, args):
    location = {"url": args.url, "metadata": _metadata(args.metadata)}
    validation = {key: value for key, value in (("checksum", args.checksum),
                                                ("os_hash_algo", args.hash_algo),
                                                ("os_hash_value", args.hash_value)) if value}
    if validation:
        location["validation_data"] = validation
    _show(_patch(client, args.image_id, [{"op": "add", "path": "/locations/-",
                                          "value": location}]), args)


def do_location_delete(client, args):
    urls = [location["url"] for location in _locations(client, args.image_id)]
    unknown = [url for url in args.url if url not in urls]
    if unknown:
        raise CommandError(f"Unknown URL(s): {unknown}")
    indexes = sorted({urls.index(url) for url in args.url}, reverse=True)
    _patch(client, args.image_id, [{"op": "remove", "path": f"/locations/{index}"}
                                   for index in indexes])


def do_location_update(client, args):
    locations = _locations(client, args.image_id)
    if args.url not in [location["url"] for location in locations]:
        raise CommandError(f"Unknown URL(s): {[args.url]}")
    metadata = _metadata(args.metadata)
    updated = [{"url": location["url"],
                "metadata": metadata if location["url"] == args.url else location["metadata"]}
               for location in locations]
    _show(_patch(client, args.image_id, [{"op": "replace", "path": "/locations",
                                          "value": updated}]), args)


def register(commands):
    p = commands.add_parser("location-add", help="Add a location (and metadata) to an image.")
    p.add_argument("--url", required=True, metavar="<URL>")
    p.add_argument("--metadata", default="{}", metavar="<STRING>",
                   help="Metadata of the location, a JSON object (default: {}).")
    p.add_argument("--checksum", metavar="<STRING>", help="md5 checksum of image contents")
    p.add_argument("--hash-algo", metavar="<STRING>", help="Multihash algorithm")
    p.add_argument("--hash-value", metavar="<STRING>", help="Multihash value")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    add_format_options(p)
    p.set_defaults(func=do_location_add)

    p = commands.add_parser("location-delete", help="Remove locations from an image.")
    p.add_argument("--url", action="append", required=True, metavar="<URL>",
                   help="URL of location to remove. May be used multiple times.")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.set_defaults(func=do_location_delete)

    p = commands.add_parser("location-update", help="Update metadata of an image's location.")
    p.add_argument("--url", required=True, metavar="<URL>")
    p.add_argument("--metadata", default="{}", metavar="<STRING>")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    add_format_options(p)
    p.set_defaults(func=do_location_update)
