"""image-list: glance's filters, sorting and paging (following `next`), and --nova-style."""
from urllib.parse import urlencode

from glancelite.cli.errors import CommandError
from glancelite.cli.images import boolean, key_value, non_negative
from glancelite.cli.output import Column, add_format_options, print_list

DEFAULT_PAGE_SIZE = 200
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")
# Nova's image view (nova/api/openstack/compute/views/images.py) mapped statuses so.
NOVA_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "deleted": "DELETED",
               "pending_delete": "DELETED", "killed": "ERROR"}

LIST_COLUMNS = [Column("ID", "id"), Column("Name", "name")]
VERBOSE_COLUMNS = [Column("Disk_format", "disk_format"),
                   Column("Container_format", "container_format"), Column("Size", "size"),
                   Column("Status", "status"), Column("Owner", "owner")]
NOVA_COLUMNS = [Column("ID", "id"), Column("Name", "name"),
                Column("Status", "status", lambda doc: NOVA_STATUS.get(doc.get("status"), "UNKNOWN")),
                Column("Server", "instance_uuid", lambda doc: doc.get("instance_uuid") or "")]


# -- querying ------------------------------------------------------------------------------

def list_query(args):
    """The query parameters of glance's image-list, in its order."""
    if args.sort and (args.sort_key or args.sort_dir):
        raise CommandError("The 'sort' argument is not supported with 'sort_key' or 'sort_dir'.")
    query = []
    for flag, param in (("visibility", "visibility"), ("member_status", "member_status"),
                        ("owner", "owner"), ("checksum", "checksum")):
        if getattr(args, flag) is not None:
            query.append((param, getattr(args, flag)))
    if args.hidden is not None:
        query.append(("os_hidden", str(args.hidden).lower()))
    if args.hash is not None:
        query.append(("os_hash_value", args.hash))
    query += list(args.property_filter)
    query += [("tag", tag) for tag in args.tag]
    if args.sort:
        query.append(("sort", args.sort))
    else:
        query += [("sort_key", key) for key in (args.sort_key or ["name"])]
        query += [("sort_dir", direction) for direction in (args.sort_dir or ["asc"])]
    return query


def iter_images(client, query, limit=None, page_size=None):
    """Every image of the listing, following `next` until `limit` images were seen."""
    page_size = page_size or DEFAULT_PAGE_SIZE
    if limit is not None:
        page_size = min(page_size, limit)
        if limit == 0:
            return
    url = "/v2/images?" + urlencode([*query, ("limit", page_size)])
    seen = 0
    while url:
        body = client.get(url)
        for image in body.get("images", []):
            yield image
            seen += 1
            if limit is not None and seen >= limit:
                return
        following = body.get("next")
        url = following if following and following != url else None


def do_image_list(client, args):
    images = list(iter_images(client, list_query(args), args.limit, args.page_size))
    if args.nova_style:
        print_list(images, NOVA_COLUMNS, args.format, args.columns, raw_json=False)
        return
    columns = LIST_COLUMNS + (VERBOSE_COLUMNS if args.verbose else [])
    if args.include_stores:
        columns = columns + [Column("Stores", "stores")]
    print_list(images, columns, args.format, args.columns)


def register(commands):
    p = commands.add_parser("image-list", help="List images you can access.")
    p.add_argument("--limit", type=non_negative, metavar="<LIMIT>",
                   help="Maximum number of images to get.")
    p.add_argument("--page-size", type=non_negative, metavar="<SIZE>",
                   help="Number of images to request in each paginated request.")
    p.add_argument("--visibility", metavar="<VISIBILITY>")
    p.add_argument("--member-status", metavar="<MEMBER_STATUS>")
    p.add_argument("--owner", metavar="<OWNER>")
    p.add_argument("--property-filter", action="append", type=key_value, default=[],
                   metavar="<KEY=VALUE>", help="Filter images by a property; repeatable.")
    p.add_argument("--checksum", metavar="<CHECKSUM>")
    p.add_argument("--hash", metavar="<HASH_VALUE>")
    p.add_argument("--tag", action="append", default=[], metavar="<TAG>")
    p.add_argument("--sort-key", action="append", choices=SORT_KEYS)
    p.add_argument("--sort-dir", action="append", choices=("asc", "desc"))
    p.add_argument("--sort", metavar="<key>[:<direction>]")
    p.add_argument("--hidden", type=boolean, nargs="?", const=True, metavar="True|False")
    p.add_argument("--include-stores", type=boolean, nargs="?", const=True, default=False,
                   metavar="True|False")
    p.add_argument("--nova-style", action="store_true",
                   help="nova image-list's table: ID | Name | Status | Server.")
    add_format_options(p)
    p.set_defaults(func=do_image_list)
