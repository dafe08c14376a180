"""`glancelite-manage`: administrative commands (database schema for now)."""
import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from glancelite.config import ConfigError, default_config_path, load_config
from glancelite.db import migrate


def _parser():
    parser = argparse.ArgumentParser(prog="glancelite-manage")
    parser.add_argument("--config-file", default=default_config_path(),
                        help="glancelite ini file (default: $GLANCELITE_CONFIG, then "
                             "conf/glancelite.conf)")
    commands = parser.add_subparsers(dest="group", required=True)
    db_parser = commands.add_parser("db", help="database schema")
    db_commands = db_parser.add_subparsers(dest="command", required=True)
    db_commands.add_parser("sync", help="apply all migrations")
    db_commands.add_parser("version", help="print the schema version")
    return parser


def main(argv=None):
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        url = load_config(args.config_file)["database"]["connection"]
        if args.command == "sync":
            migrate.sync(url)
            current, _head = migrate.current_version(url)
            print(f"database at schema version {current}")
        else:
            current, head = migrate.current_version(url)
            print(current or "none")
            if current != head:
                print(f"(newest available: {head}; run `glancelite-manage db sync`)",
                      file=sys.stderr)
    except ConfigError as exc:
        sys.exit(f"glancelite-manage: {exc}")
    except SQLAlchemyError as exc:
        sys.exit(f"glancelite-manage: database error: {exc.__class__.__name__}: {exc}")
    return 0


if __name__ == "__main__":
    main()
