"""Who is calling: the RequestContext and the `noauth` identity strategy.

noauth trusts the headers keystonemiddleware sets (X-Identity-Status: Confirmed,
X-Roles, X-Project-Id/X-Tenant-Id, X-User-Id, X-Service-Roles). Without them the
request runs as Glance's unauthenticated context: an admin with no user and the
project from `noauth_project`. Token checking strategies plug in here.
"""
from dataclasses import dataclass, field

from glancelite.errors import Unauthorized

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class RequestContext:
    user_id: str | None = None
    project_id: str | None = None
    roles: tuple = ()
    service_roles: tuple = ()
    is_admin: bool = False
    request_id: str = ""
    auth_token: str | None = field(default=None, repr=False)

    @property
    def owner(self):
        """Images created by this caller belong to its project."""
        return self.project_id


def _role_list(value):
    return tuple(role.strip().lower() for role in (value or "").split(",") if role.strip())


def noauth_context(headers, conf, request_id):
    """Context from keystonemiddleware-style headers, else the unauthenticated admin."""
    status = headers.get("X-Identity-Status")
    if status is None:
        return RequestContext(project_id=conf["DEFAULT"]["noauth_project"] or None,
                              is_admin=True, request_id=request_id,
                              auth_token=headers.get("X-Auth-Token"))
    if status != "Confirmed":
        raise Unauthorized(
            "This server could not verify that you are authorized to access the document you "
            "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
            "browser does not understand how to supply the credentials required.")
    roles = _role_list(headers.get("X-Roles") or headers.get("X-Role"))
    return RequestContext(
        user_id=headers.get("X-User-Id") or headers.get("X-User") or None,
        project_id=(headers.get("X-Project-Id") or headers.get("X-Tenant-Id")
                    or headers.get("X-Tenant") or None),
        roles=roles,
        service_roles=_role_list(headers.get("X-Service-Roles")),
        is_admin=ADMIN_ROLE in roles,
        request_id=request_id,
        auth_token=headers.get("X-Auth-Token"),
    )


STRATEGIES = {"noauth": noauth_context}


def build_context(headers, conf, request_id):
    return STRATEGIES[conf["DEFAULT"]["auth_strategy"]](headers, conf, request_id)
