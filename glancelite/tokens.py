"""The tokens file of `auth_strategy = tokens`: who a bearer token stands for.

Each section is the SHA-256 of a token, so the file never holds a usable secret:

    [9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08]
    user = alice
    project = demo
    roles = member, reader

`glancelite-manage token create` writes new entries and prints the token once.
"""
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

from configobj import ConfigObj, ConfigObjError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class TokensFileError(Exception):
    """The tokens file is missing or malformed."""


@dataclass(frozen=True)
class TokenOwner:
    user: str
    project: str
    roles: tuple


def digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read(path):
    try:
        return ConfigObj(path, file_error=True, interpolation=False, list_values=False)
    except (OSError, ConfigObjError) as exc:
        raise TokensFileError(f"{path}: cannot read tokens file ({exc})") from exc


def load(path):
    """{sha256 hex: TokenOwner}, validated: every entry needs a project and roles."""
    table = {}
    for section, values in _read(path).items():
        if not isinstance(values, dict) or not _DIGEST.match(section):
            raise TokensFileError(f"{path}: [{section}] is not the SHA-256 (64 lower-case hex "
                                  f"digits) of a token")
        missing = {"project", "roles"} - set(values)
        if missing:
            raise TokensFileError(f"{path}: [{section}] lacks {', '.join(sorted(missing))}")
        roles = tuple(r.strip().lower() for r in values["roles"].split(",") if r.strip())
        table[section] = TokenOwner(user=values.get("user") or section[:12],
                                    project=values["project"], roles=roles)
    return table


def lookup(table, token):
    """The owner of `token`, or None: its SHA-256 is compared with every entry in constant
    time, so response timing tells nothing about which tokens exist."""
    wanted = digest(token)
    for known, owner in table.items():
        if hmac.compare_digest(known, wanted):
            return owner
    return None


def create(path, project, roles, user=None):
    """Add a new token to the file (created if absent); returns the token itself."""
    token = secrets.token_urlsafe(32)
    try:
        config = ConfigObj(path, interpolation=False, list_values=False, create_empty=True)
    except ConfigObjError as exc:
        raise TokensFileError(f"{path}: cannot read tokens file ({exc})") from exc
    config[digest(token)] = {"user": user or f"{project}-user", "project": project,
                             "roles": ", ".join(roles)}
    config.write()
    os.chmod(path, 0o600)
    return token
