"""`glancelite-manage`: administrative commands (database schema, tokens, reap, scrub)."""
import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from glancelite import protection, tokens
from glancelite.app import make_leases_and_scrubber, make_store
from glancelite.config import ConfigError, default_config_path, load_config
from glancelite.db import migrate
from glancelite.db.engine import make_engine
from glancelite.policy import load_policy_file


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
    commands.add_parser("check-config", help="validate the config, policy, protection and "
                                             "tokens files; print every problem")
    token_parser = commands.add_parser("token", help="tokens of auth_strategy = tokens")
    token_commands = token_parser.add_subparsers(dest="command", required=True)
    create = token_commands.add_parser("create", help="add a token to tokens_file, print it once")
    create.add_argument("--project", required=True)
    create.add_argument("--roles", required=True, help="comma-separated, e.g. member,reader")
    create.add_argument("--user", help="user id recorded for the token (default: PROJECT-user)")
    commands.add_parser("reap", help="undo uploads whose worker died (expired upload leases): "
                                     "remove their partial bytes, images back to queued")
    scrub = commands.add_parser("scrub", help="remove the bytes of deleted (pending_delete) "
                                              "images whose scrub_time is over")
    scrub.add_argument("--restore", metavar="IMAGE_ID",
                       help="instead, bring a pending_delete image back to active")
    return parser


def _leases_and_scrubber(conf):
    engine = make_engine(conf["database"]["connection"])
    return make_leases_and_scrubber(conf, engine, make_store(conf))


def _reap(_args, conf):
    leases, _scrubber = _leases_and_scrubber(conf)
    reaped = leases.reap()
    print(f"reaped {len(reaped)} expired upload lease(s)" + "".join(f"\n  {i}" for i in reaped))


def _scrub(args, conf):
    _leases, scrubber = _leases_and_scrubber(conf)
    if args.restore:
        if not scrubber.restore(args.restore):
            sys.exit(f"glancelite-manage: image {args.restore} is not pending_delete with its "
                     f"data (or is being scrubbed right now); nothing restored")
        print(f"image {args.restore} restored to active")
        return
    report = scrubber.run()
    print(f"scrubbed {len(report.scrubbed)} image(s)"
          + "".join(f"\n  {image_id}" for image_id in report.scrubbed))
    if report.failed:
        sys.exit(f"glancelite-manage: {len(report.failed)} image(s) could not be scrubbed "
                 f"(store errors, see the warnings above); they stay pending_delete for the next run: "
                 + ", ".join(report.failed))


def _db(args, conf):
    url = conf["database"]["connection"]
    if args.command == "sync":
        migrate.sync(url)
        current, _head = migrate.current_version(url)
        print(f"database at schema version {current}")
        return
    current, head = migrate.current_version(url)
    print(current or "none")
    if current != head:
        print(f"(newest available: {head}; run `glancelite-manage db sync`)", file=sys.stderr)


def check_config(path):
    """Print every problem that would stop glancelite-api, and warnings worth a look;
    exit status 1 if any is fatal. For use before a restart."""
    try:
        conf = load_config(path)
    except ConfigError as exc:
        print(f"ERROR: {exc}")
        return 1
    loaded = {}
    checks = {
        "policy": lambda: load_policy_file(conf["oslo_policy"]["policy_file"]),
        "property protection": lambda: protection.from_config(conf, loaded.get("policy")),
        "store": lambda: make_store(conf),
    }
    if conf["DEFAULT"]["auth_strategy"] == "tokens":
        checks["tokens"] = lambda: tokens.load(conf["DEFAULT"]["tokens_file"])
    fatal = 0
    for name, check in checks.items():
        try:
            loaded[name] = check()
        except (ConfigError, tokens.TokensFileError) as exc:
            print(f"ERROR ({name}): {exc}")
            fatal += 1
            continue
        for problem in getattr(loaded[name], "problems", []):
            print(f"WARNING ({name}): {problem}")
    if fatal:
        print(f"{fatal} problem(s) would stop glancelite-api")
        return 1
    print(f"{conf['__file__']}: configuration OK")
    return 0


def _token(args, conf):
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    if not roles:
        sys.exit("glancelite-manage: --roles needs at least one role")
    path = conf["DEFAULT"]["tokens_file"]
    print(tokens.create(path, args.project, roles, args.user))
    print(f"(stored as its SHA-256 in {path}; this is the only time it is shown)", file=sys.stderr)


def main(argv=None):
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.group == "check-config":
        sys.exit(check_config(args.config_file))
    try:
        conf = load_config(args.config_file)
        {"db": _db, "token": _token, "reap": _reap, "scrub": _scrub}[args.group](args, conf)
    except (ConfigError, tokens.TokensFileError) as exc:
        sys.exit(f"glancelite-manage: {exc}")
    except SQLAlchemyError as exc:
        sys.exit(f"glancelite-manage: database error: {exc.__class__.__name__}: {exc}")
    return 0


if __name__ == "__main__":
    main()
