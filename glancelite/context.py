"""Who is calling: the RequestContext and the identity strategies (`auth_strategy`).

noauth trusts the headers keystonemiddleware sets (X-Identity-Status: Confirmed, X-Roles,
X-Project-Id/X-Tenant-Id, X-User-Id, X-Service-Roles). Without them the request runs as
Glance's unauthenticated context: an admin with no user and the project from
`noauth_project`. Since anyone who reaches the port can claim any identity, it is refused
off loopback unless `allow_insecure_noauth` is set.

tokens requires X-Auth-Token and looks it up in the tokens file (glancelite.tokens).
"""
import ipaddress
import logging
from dataclasses import dataclass, field
from functools import cached_property

from glancelite import tokens
from glancelite.errors import Unauthorized

LOG = logging.getLogger(__name__)
_UNAUTHORIZED = ("This server could not verify that you are authorized to access the document "
                 "you requested. Either you supplied the wrong credentials (e.g., bad password), "
                 "or your browser does not understand how to supply the credentials required.")


class IdentityConfigError(Exception):
    """The identity settings are unsafe or their files are unusable."""


@dataclass(frozen=True)
class RequestContext:
    user_id: str | None = None
    project_id: str | None = None
    roles: tuple = ()
    service_roles: tuple = ()
    is_admin: bool = False
    request_id: str = ""
    auth_token: str | None = field(default=None, repr=False)
    # property-protection decisions made for this request, (name, op) -> bool
    decisions: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def owner(self):
        """Images created by this caller belong to its project."""
        return self.project_id

    @cached_property
    def _credentials(self):
        return {"roles": list(self.roles + self.service_roles), "project_id": self.project_id,
                "user_id": self.user_id, "is_admin": self.is_admin,
                "service_roles": list(self.service_roles)}

    def policy_credentials(self):
        """The creds dict policy rules are evaluated against (oslo.policy's keys); built
        once per request and shared, so callers must not change it."""
        return self._credentials


def _role_list(value):
    return tuple(role.strip().lower() for role in (value or "").split(",") if role.strip())


def _unauthorized():
    return Unauthorized(_UNAUTHORIZED, headers={"WWW-Authenticate": 'Token realm="glancelite"'})


class NoAuth:
    def __init__(self, conf):
        defaults = conf["DEFAULT"]
        self.project = defaults["noauth_project"] or None
        self.admin_role = defaults["admin_role"].lower()
        _refuse_open_noauth(defaults, conf["__file__"])

    def __call__(self, headers, request_id):
        status = headers.get("X-Identity-Status")
        if status is None:  # holds the admin role too, so admin-only policy rules pass
            return RequestContext(project_id=self.project, roles=(self.admin_role,),
                                  is_admin=True, request_id=request_id,
                                  auth_token=headers.get("X-Auth-Token"))
        if status != "Confirmed":
            raise _unauthorized()
        roles = _role_list(headers.get("X-Roles") or headers.get("X-Role"))
        return RequestContext(
            user_id=headers.get("X-User-Id") or headers.get("X-User") or None,
            project_id=(headers.get("X-Project-Id") or headers.get("X-Tenant-Id")
                        or headers.get("X-Tenant") or None),
            roles=roles,
            service_roles=_role_list(headers.get("X-Service-Roles")),
            is_admin=self.admin_role in roles,
            request_id=request_id,
            auth_token=headers.get("X-Auth-Token"),
        )


class Tokens:
    def __init__(self, conf):
        path = conf["DEFAULT"]["tokens_file"]
        self.admin_role = conf["DEFAULT"]["admin_role"].lower()
        try:
            self.table = tokens.load(path)
        except tokens.TokensFileError as exc:
            raise IdentityConfigError(str(exc)) from exc

    def __call__(self, headers, request_id):
        token = headers.get("X-Auth-Token")
        owner = tokens.lookup(self.table, token) if token else None
        if owner is None:
            raise _unauthorized()
        return RequestContext(user_id=owner.user, project_id=owner.project, roles=owner.roles,
                              is_admin=self.admin_role in owner.roles, request_id=request_id,
                              auth_token=token)


def _refuse_open_noauth(defaults, where):
    host = defaults["bind_host"]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return
    if not defaults["allow_insecure_noauth"]:
        raise IdentityConfigError(
            f"{where}: auth_strategy = noauth lets anyone reach {host} as any user, admin "
            f"included; use auth_strategy = tokens, bind to 127.0.0.1, or set "
            f"allow_insecure_noauth = true if a trusted proxy authenticates for us")
    LOG.warning("INSECURE: auth_strategy = noauth on %s: every client can act as any user "
                "(allow_insecure_noauth = true)", host)


STRATEGIES = {"noauth": NoAuth, "tokens": Tokens}


def make_authenticator(conf):
    """A callable (headers, request_id) -> RequestContext for the configured strategy."""
    return STRATEGIES[conf["DEFAULT"]["auth_strategy"]](conf)
