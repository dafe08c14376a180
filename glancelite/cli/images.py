"""image-* commands but image-list: show, create, update, upload, download, delete,
(de|re)activate, tags; and the argument types the image commands share."""
import argparse
import os
import sys

from glancelite.cli import transfer
from glancelite.cli.errors import CommandError, HTTPError
from glancelite.cli.http import seg
from glancelite.cli.output import Column, add_format_options, human_size, print_dict, print_list

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
HIDDEN = ("self", "access", "file", "schema")
# The writable fields of the image schema, as glance's schema-derived flags name them.
STRING_FIELDS = ("name", "id", "visibility", "owner", "disk_format", "container_format",
                 "kernel_id", "ramdisk_id", "instance_uuid", "architecture", "os_distro",
                 "os_version", "description", "cinder_encryption_key_id",
                 "cinder_encryption_key_deletion_policy")
INT_FIELDS = ("min_disk", "min_ram")
BOOL_FIELDS = {"protected": "protected", "hidden": "os_hidden"}


def boolean(text):
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on", "t", "y"):
        return True
    if value in ("false", "0", "no", "off", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value: {text!r}")


def key_value(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def non_negative(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def image_formatters(human_readable=False):
    formatters = {"virtual_size": lambda v: "Not available" if v is None else str(v)}
    if human_readable:
        formatters["size"] = human_size
    return formatters


def show_image(image, args, hidden=HIDDEN):
    print_dict(image, args.format, args.columns, hidden=hidden,
               formatters=image_formatters(getattr(args, "human_readable", False)),
               max_width=getattr(args, "max_column_width", 80))


def _flag(name):
    return "--" + name.replace("_", "-")


def add_schema_flags(parser, create):
    for name in STRING_FIELDS:
        if name == "id" and not create:
            continue
        parser.add_argument(_flag(name), dest=f"field_{name}", metavar=f"<{name.upper()}>")
    for name in INT_FIELDS:
        parser.add_argument(_flag(name), dest=f"field_{name}", type=non_negative,
                            metavar=f"<{name.upper()}>")
    if create:
        parser.add_argument("--tags", dest="field_tags", nargs="+", metavar="<TAGS>",
                            help="List of strings related to the image")
    for flag, name in BOOL_FIELDS.items():
        parser.add_argument(f"--{flag}", dest=f"field_{name}", type=boolean, nargs="?",
                            const=True, metavar="True|False")
    parser.add_argument("--property", action="append", type=key_value, default=[],
                        metavar="<key=value>", help="Arbitrary property to associate with "
                        "image. May be used multiple times.")


def schema_fields(args):
    """{key: value} of the schema flags that were given."""
    return {key[len("field_"):]: value for key, value in vars(args).items()
            if key.startswith("field_") and value is not None}


# -- image-show / create / update ------------------------------------------------------------

def do_image_show(client, args):
    show_image(client.get(f"/v2/images/{seg(args.image_id)}"), args)


def do_image_create(client, args):
    fields = schema_fields(args)
    for key, value in args.property:
        fields[key] = value
    source = transfer.data_source(args.file, sys.stdin, args.size)
    if source is not None:
        missing = [flag for flag, key in (("--disk-format", "disk_format"),
                                          ("--container-format", "container_format"))
                   if not fields.get(key)]
        if missing:
            where = "--file" if source.label == "--file" else "image data on stdin"
            raise CommandError(f"error: Must provide {', '.join(missing)} when using {where}.")
        if args.store:
            transfer.require_store(client, args.store)
    image = client.json("POST", "/v2/images", json=fields)
    if source is not None:
        try:
            transfer.upload(client, image["id"], source, args.progress, args.store)
        except CommandError as exc:
            raise CommandError(f"{exc}\nImage {image['id']} was created without data; send it "
                               f"with: glancelite image-upload --file FILE {image['id']}") from exc
        image = client.get(f"/v2/images/{seg(image['id'])}")
    show_image(image, args)


def update_patch(image, fields, properties, removals):
    """The v2.1 JSON patch glance sends: removes of present keys, adds, then replaces."""
    patch = [{"op": "remove", "path": "/" + _escape(key)} for key in removals if key in image]
    patch += [{"op": "add", "path": "/" + _escape(key), "value": value} for key, value in properties]
    for key, value in fields.items():
        patch.append({"op": "replace" if key in image else "add", "path": "/" + _escape(key),
                      "value": value})
    return patch


def _escape(key):
    return key.replace("~", "~0").replace("/", "~1")


def do_image_update(client, args):
    image = client.get(f"/v2/images/{seg(args.image_id)}")
    patch = update_patch(image, schema_fields(args), args.property, args.remove_property)
    if patch:
        image = client.json("PATCH", f"/v2/images/{seg(args.image_id)}", json=patch,
                            headers={"Content-Type": PATCH_TYPE})
    show_image(image, args)


# -- data ------------------------------------------------------------------------------------

def do_image_upload(client, args):
    source = transfer.data_source(args.file, sys.stdin, args.size)
    if source is None:
        raise CommandError("No image data: give --file FILE or send the data on standard input.")
    if args.store:
        transfer.require_store(client, args.store)
    transfer.upload(client, args.image_id, source, args.progress, args.store)


def do_image_download(client, args):
    if args.resume and not args.file:
        raise CommandError("--resume needs --file", exit_code=2)
    transfer.download(client, args.image_id, args.file, args.progress, args.resume,
                      args.allow_md5_fallback)


# -- delete, actions, tags -------------------------------------------------------------------

DELETE_MESSAGES = {404: "No image with an ID of '{id}' exists.",
                   403: "You are not permitted to delete the image '{id}'.",
                   409: "Unable to delete image '{id}' because it is in use."}


def do_image_delete(client, args):
    failed = False
    for image_id in args.image_ids:
        try:
            client.request("DELETE", f"/v2/images/{seg(image_id)}")
        except HTTPError as exc:
            failed = True
            message = DELETE_MESSAGES.get(exc.status)
            print(message.format(id=image_id) if message
                  else f"Unable to delete image '{image_id}': {exc}", file=sys.stderr)
    if failed:
        raise CommandError("", exit_code=1)


def _action(name):
    def run(client, args):
        client.request("POST", f"/v2/images/{seg(args.image_id)}/actions/{name}")
    return run


def do_image_tag_update(client, args):
    client.request("PUT", f"/v2/images/{seg(args.image_id)}/tags/{seg(args.tag_value)}")
    image = client.get(f"/v2/images/{seg(args.image_id)}")
    print_list([image], [Column("ID", "id"), Column("Tags", "tags")], args.format, args.columns,
               raw_json=False)


def do_image_tag_delete(client, args):
    client.request("DELETE", f"/v2/images/{seg(args.image_id)}/tags/{seg(args.tag_value)}")


# -- wiring ----------------------------------------------------------------------------------

def _data_flags(parser, action):
    parser.add_argument("--file", metavar="<FILE>", help=f"Local file with the image data to "
                        f"{action}; otherwise the data is read from stdin (not a terminal).")
    parser.add_argument("--size", type=non_negative, metavar="<IMAGE_SIZE>",
                        help="Size in bytes of the data on stdin, when it cannot be inferred.")
    parser.add_argument("--progress", action="store_true",
                        help="Show a progress bar with rate and ETA on stderr.")
    parser.add_argument("--store", metavar="<STORE>", help="Backend store to upload image to.")


def register(commands):
    p = commands.add_parser("image-show", help="Describe a specific image.")
    p.add_argument("--human-readable", action="store_true")
    p.add_argument("--max-column-width", type=int, default=80, metavar="<integer>")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    add_format_options(p)
    p.set_defaults(func=do_image_show)

    p = commands.add_parser("image-create", help="Create a new image.")
    add_schema_flags(p, create=True)
    _data_flags(p, "upload")
    add_format_options(p)
    p.set_defaults(func=do_image_create)

    p = commands.add_parser("image-update", help="Update an existing image.")
    add_schema_flags(p, create=False)
    p.add_argument("--remove-property", action="append", default=[], metavar="key")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    add_format_options(p)
    p.set_defaults(func=do_image_update)

    p = commands.add_parser("image-upload", help="Upload data for a specific image.")
    _data_flags(p, "upload")
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.set_defaults(func=do_image_upload)

    p = commands.add_parser("image-download", help="Download a specific image, verified.")
    p.add_argument("--file", metavar="<FILE>", help="Save to FILE (via FILE.part) instead of "
                   "stdout.")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--resume", action="store_true",
                   help="Continue an interrupted download kept in FILE.part.")
    p.add_argument("--allow-md5-fallback", action="store_true",
                   default=bool(os.environ.get("OS_IMAGE_ALLOW_MD5_FALLBACK")))
    p.add_argument("image_id", metavar="<IMAGE_ID>")
    p.set_defaults(func=do_image_download)

    p = commands.add_parser("image-delete", help="Delete specified image(s).")
    p.add_argument("image_ids", nargs="+", metavar="<IMAGE_ID>")
    p.set_defaults(func=do_image_delete)

    for name in ("deactivate", "reactivate"):
        p = commands.add_parser(f"image-{name}", help=f"{name.capitalize()} specified image.")
        p.add_argument("image_id", metavar="<IMAGE_ID>")
        p.set_defaults(func=_action(name))

    for name, func in (("update", do_image_tag_update), ("delete", do_image_tag_delete)):
        p = commands.add_parser(f"image-tag-{name}", help=f"{name.capitalize()} a tag of an image.")
        p.add_argument("image_id", metavar="<IMAGE_ID>")
        p.add_argument("tag_value", metavar="<TAG_VALUE>")
        if name == "update":
            add_format_options(p)
        p.set_defaults(func=func)
