"""stores-info and the cache-* commands: both need server features glancelite may lack.

Without multi-store (`GET /v2/info/stores` → 404) and without the cache API (no `v2.14` in
`/versions`) they stop with glance's messages.
"""
import sys
from datetime import datetime, timezone

from glancelite.cli.errors import CommandError, HTTPError
from glancelite.cli.http import seg
from glancelite.cli.output import Column, add_format_options, print_dict, print_list

CACHE_VERSION = "v2.14"
CACHE_COLUMNS = [Column("ID", "image_id"), Column("State", "state"),
                 Column("Last Accessed (UTC)", "last_accessed"),
                 Column("Last Modified (UTC)", "last_modified"), Column("Size", "size"),
                 Column("Hits", "hits")]


def do_stores_info(client, args):
    path = "/v2/info/stores/detail" if args.detail else "/v2/info/stores"
    try:
        stores = client.get(path)
    except HTTPError as exc:
        if exc.status == 404:
            raise CommandError("Multi Backend support is not enabled") from exc
        raise
    print_dict(stores, args.format, args.columns)


def _require_cache_api(client):
    ids = [version.get("id") for version in client.get("/versions").get("versions", [])]
    if CACHE_VERSION not in ids:
        raise CommandError(f"Glance does not support image caching API ({CACHE_VERSION})")


def _utc(stamp):
    if not stamp:
        return "N/A"
    return datetime.fromtimestamp(float(stamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def do_cache_list(client, args):
    _require_cache_api(client)
    body = client.get("/v2/cache")
    rows = [{"image_id": entry.get("image_id"), "state": "cached",
             "last_accessed": _utc(entry.get("last_accessed")),
             "last_modified": _utc(entry.get("last_modified")), "size": entry.get("size"),
             "hits": entry.get("hits")} for entry in body.get("cached_images", [])]
    rows += [{"image_id": image_id, "state": "queued", "last_accessed": "N/A",
              "last_modified": "N/A", "size": "N/A", "hits": "N/A"}
             for image_id in body.get("queued_images", [])]
    if args.format == "json" and not args.columns:
        print_dict(body, "json")
        return
    print_list(rows, CACHE_COLUMNS, args.format, args.columns, raw_json=False)


def _each(method):
    def run(client, args):
        _require_cache_api(client)
        failed = False
        for image_id in args.image_ids:
            try:
                client.request(method, f"/v2/cache/{seg(image_id)}")
            except HTTPError as exc:
                failed = True
                print(f"Failed to {'queue' if method == 'PUT' else 'delete'} image {image_id} "
                      f"{'for caching' if method == 'PUT' else 'from cache'}: {exc}",
                      file=sys.stderr)
        if failed:
            raise CommandError("")
    return run


def do_cache_clear(client, args):
    _require_cache_api(client)
    target = "" if args.target == "both" else args.target
    client.request("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": target})


def register(commands):
    p = commands.add_parser("stores-info", help="Print available backends from Glance.")
    p.add_argument("--detail", action="store_true", help="Shows details of stores. Admin only.")
    add_format_options(p)
    p.set_defaults(func=do_stores_info)

    p = commands.add_parser("cache-list", help="Get cache state (the server's cache API).")
    add_format_options(p)
    p.set_defaults(func=do_cache_list)
    for name, method, text in (("cache-queue", "PUT", "Queue image(s) for caching."),
                               ("cache-delete", "DELETE", "Delete image(s) from cache/queue.")):
        p = commands.add_parser(name, help=text)
        p.add_argument("image_ids", nargs="+", metavar="<IMAGE_ID>")
        p.set_defaults(func=_each(method))
    p = commands.add_parser("cache-clear", help="Clear the cache and/or the queue.")
    p.add_argument("--target", choices=("both", "cache", "queue"), default="both")
    p.set_defaults(func=do_cache_clear)
