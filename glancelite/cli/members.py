"""member-* commands: share an image with projects and answer such offers."""
from glancelite.cli.http import seg
from glancelite.cli.output import Column, add_format_options, print_dict, print_list

MEMBER_COLUMNS = [Column("Image ID", "image_id"), Column("Member ID", "member_id"),
                  Column("Status", "status")]
STATUSES = ("accepted", "rejected", "pending")


def _members(image_id, member_id=None):
    path = f"/v2/images/{seg(image_id)}/members"
    return path if member_id is None else f"{path}/{seg(member_id)}"


def do_member_create(client, args):
    member = client.json("POST", _members(args.image_id), json={"member": args.member_id})
    print_list([member], MEMBER_COLUMNS, args.format, args.columns)


def do_member_list(client, args):
    members = client.get(_members(args.image_id)).get("members", [])
    print_list(members, MEMBER_COLUMNS, args.format, args.columns)


def do_member_get(client, args):
    print_dict(client.get(_members(args.image_id, args.member_id)), args.format, args.columns)


def do_member_update(client, args):
    member = client.json("PUT", _members(args.image_id, args.member_id),
                         json={"status": args.member_status})
    print_list([member], MEMBER_COLUMNS, args.format, args.columns)


def do_member_delete(client, args):
    client.request("DELETE", _members(args.image_id, args.member_id))


def register(commands):
    p = commands.add_parser("member-create", help="Create member for a given image.")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.add_argument("member_id", metavar="<MEMBER_ID>")
    add_format_options(p)
    p.set_defaults(func=do_member_create)

    p = commands.add_parser("member-list", help="Describe sharing permissions by image.")
    p.add_argument("--image-id", required=True, metavar="<IMAGE_ID>")
    add_format_options(p)
    p.set_defaults(func=do_member_list)

    p = commands.add_parser("member-get", help="Show details of an image member.")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.add_argument("member_id", metavar="<MEMBER_ID>")
    add_format_options(p)
    p.set_defaults(func=do_member_get)

    p = commands.add_parser("member-update", help="Update the status of a member for a given image.")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.add_argument("member_id", metavar="<MEMBER_ID>")
    p.add_argument("member_status", choices=STATUSES, metavar="<MEMBER_STATUS>",
                   help=f"One of: {', '.join(STATUSES)}.")
    add_format_options(p)
    p.set_defaults(func=do_member_update)

    p = commands.add_parser("member-delete", help="Delete image member.")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.add_argument("member_id", metavar="<MEMBER_ID>")
    p.set_defaults(func=do_member_delete)
