"""`glancelite`: argparse wiring, global options, and exit statuses.

Exit statuses are glance's: 0 ok, 1 a handled failure (message on stderr), 2 a usage error,
130 Ctrl-C; plus 3 for a download whose hash does not match. Commands live in
listing.py, images.py, members.py, locations.py and info.py; each module's register() adds
its subparsers, whose `func(client, args)` runs the command. The compute-node fetcher's
group (`glancelite compute ...`, added by glancelite.compute.cli.register when that module
exists) reads its own nova-style configuration: its commands get `func(args)` and no image
API client.
"""
import argparse
import importlib
import os
import sys

from glancelite.cli import images, info, listing, locations, members, settings
from glancelite.cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, CommandError
from glancelite.cli.http import Client

COMMAND_MODULES = (listing, images, members, locations, info)
OPTIONAL_COMMANDS = ("glancelite.compute.cli",)


class _Version(argparse.Action):
    """--version, reading the installed package's metadata only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata
        try:
            version = metadata.version("glancelite")
        except metadata.PackageNotFoundError:
            version = "unknown"
        print(f"glancelite {version}")
        parser.exit()


_VALUED_OPTIONS = ("--os-image-url", "--os-auth-token", "--os-image-api-version", "--timeout",
                   "--config-file")


def _command_name(argv):
    """The subcommand named in argv (the first positional after the global options)."""
    tokens = iter(argv)
    for token in tokens:
        if token in _VALUED_OPTIONS:
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def build_parser(argv=()):
    parser = argparse.ArgumentParser(prog="glancelite", description="Command-line client for the Glance v2 "
                    "image API (glancelite or OpenStack Glance).")
    parser.add_argument("--version", action=_Version, help="Show the version and exit.")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="Print each HTTP request and its status on stderr.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="More columns in image-list.")
    parser.add_argument("--os-image-url", metavar="OS_IMAGE_URL",
                        help="Image API endpoint, e.g. http://127.0.0.1:9292. "
                        "Default: env[OS_IMAGE_URL], then image_url in the config file.")
    parser.add_argument("--os-auth-token", metavar="OS_AUTH_TOKEN",
                        help="Token sent as X-Auth-Token. Default: env[OS_AUTH_TOKEN], then "
                        "auth_token in the config file.")
    parser.add_argument("--os-image-api-version", metavar="OS_IMAGE_API_VERSION",
                        help="Only 2 is supported. Default: env[OS_IMAGE_API_VERSION].")
    parser.add_argument("--timeout", type=float, metavar="<seconds>",
                        help="HTTP timeout in seconds (default 600, or timeout in the config file).")
    parser.add_argument("--config-file", metavar="PATH",
                        help=f"Client config file (default: env[{settings.CONFIG_ENV}], then "
                        f"{settings.DEFAULT_CONFIG}).")
    commands = parser.add_subparsers(title="commands", metavar="<subcommand>", dest="command")
    for module in COMMAND_MODULES:
        module.register(commands)
    ours = _command_name(argv) in commands.choices
    for name in OPTIONAL_COMMANDS if not ours else ():  # imported only when they may run
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        before = set(commands.choices)
        module.register(commands)
        for added in set(commands.choices) - before:  # they read their own configuration
            commands.choices[added].set_defaults(needs_client=False)
    helper = commands.add_parser("help", help="Display help about this program or one of its "
                                 "subcommands.")
    helper.add_argument("topic", nargs="?", metavar="<subcommand>")
    helper.set_defaults(func=None, needs_client=False)
    return parser, commands


def _help(parser, commands, topic):
    if topic is None:
        parser.print_help()
        return 0
    if topic not in commands.choices:
        parser.error(f"'{topic}' is not a valid subcommand")
    commands.choices[topic].print_help()
    return 0


def run(argv):
    parser, commands = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("glancelite: error: a subcommand is required (see `glancelite help`)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.command == "help":
        return _help(parser, commands, args.topic)
    if not getattr(args, "needs_client", True):
        return args.func(args) or 0
    endpoint, token, timeout = settings.resolve(args)
    client = Client(endpoint, token, timeout, debug=args.debug)
    return args.func(client, args) or 0


def main(argv=None):
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except CommandError as exc:
        if str(exc):
            print(exc, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("... terminating glancelite client", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): no traceback at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
