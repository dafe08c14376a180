"""create_app(conf): the one place that wires configuration, database, services and HTTP."""
import logging
import random
import time
import uuid
from dataclasses import replace
from http import HTTPStatus

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from glancelite import protection
from glancelite.api import errors as api_errors
from glancelite.api import image_data as image_data_api
from glancelite.api import image_list as image_list_api
from glancelite.api import image_update as image_update_api
from glancelite.api import images as images_api
from glancelite.api import members as members_api
from glancelite.api import schemas as schemas_api
from glancelite.api import stores as stores_api
from glancelite.api import versions as versions_api
from glancelite.authz import Authorizer
from glancelite.context import make_authenticator
from glancelite.db.engine import configure_sqlite, engine_options, resolve_url
from glancelite.db.migrate import current_version
from glancelite.db.models import db
from glancelite.errors import BadRequest, GlanceError, MethodNotAllowed, NotFound, ServiceUnavailable
from glancelite.housekeeping import Housekeeping
from glancelite.image_data import ImageDataService
from glancelite.image_update import ImageUpdater
from glancelite.images import ImageService
from glancelite.leases import Leases
from glancelite.listing import ImageListing
from glancelite.members import MemberService
from glancelite.negotiation import VersionNegotiation
from glancelite.policy import load_policy_file
from glancelite.scrubber import Scrubber
from glancelite.store import registry as store_registry
from glancelite.store.base import StoreUnavailable

LOG = logging.getLogger("glancelite.api")
_UNVERSIONED = ("/", "/versions")
# Reason phrases as Glance (webob) sends them: "404 Not Found", not werkzeug's "404 NOT FOUND".
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class DatabaseNotReady(Exception):
    """The schema is missing or older than this code: `glancelite-manage db sync` first."""


def create_app(conf, check_schema=True):
    url = resolve_url(conf["database"]["connection"])
    if check_schema:
        _require_current_schema(url)
    app = Flask(__name__)
    app.config.update(GLANCELITE=conf, SQLALCHEMY_DATABASE_URI=url,
                      SQLALCHEMY_ENGINE_OPTIONS=engine_options(url))
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.json.compact = True
    app.url_map.strict_slashes = False
    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
        engine = db.engine
    store = make_store(conf)
    authz = make_authorizer(conf)
    leases, scrubber = make_leases_and_scrubber(conf, engine, store)
    images = ImageService(conf, store, authz, leases, scrubber)
    app.extensions["glancelite"] = {
        "images": images,
        "data": ImageDataService(conf, images, store, leases),
        "housekeeping": make_housekeeping(conf, leases, scrubber),
        "listing": ImageListing(conf, authz),
        "updates": ImageUpdater(conf, images),
        "members": MemberService(conf, images),
    }
    for blueprint in (versions_api.bp, schemas_api.bp, images_api.bp, image_list_api.bp,
                      image_update_api.bp, members_api.bp, image_data_api.bp, stores_api.bp):
        app.register_blueprint(blueprint)
    _install_request_hooks(app, conf, authz)
    _install_error_handlers(app)
    app.wsgi_app = VersionNegotiation(app.wsgi_app, versions_api.accepted_prefixes(store.multi))
    return app


def make_authorizer(conf):
    """policy.json and the property-protection file, validated before anything is served."""
    policy = load_policy_file(conf["oslo_policy"]["policy_file"])
    return Authorizer(policy, protection.from_config(conf, policy))


def make_leases_and_scrubber(conf, engine, store):
    defaults = conf["DEFAULT"]
    leases = Leases(engine, store, defaults["upload_lease_timeout"])
    return leases, Scrubber(leases, store, defaults["scrub_time"])


def make_housekeeping(conf, leases, scrubber):
    """Each worker's background reaper and scrubber (started by start_housekeeping)."""
    housekeeping = Housekeeping()
    housekeeping.every("lease reaper", conf["DEFAULT"]["upload_reaper_interval"], leases.reap)
    housekeeping.every("scrubber", conf["DEFAULT"]["scrub_interval"], scrubber.run)
    return housekeeping


def start_housekeeping(app):
    """Start this process's background jobs (idempotent); glancelite-api calls it when a
    worker boots, and the first request of a process calls it under any WSGI server."""
    app.extensions["glancelite"]["housekeeping"].start()
    return app


def make_store(conf):
    """The configured stores (a StoreRegistry); a bad store option stops the service at start."""
    return store_registry.from_config(conf)


def _require_current_schema(url):
    current, head = current_version(url)
    if current != head:
        raise DatabaseNotReady(f"database {url} is at schema {current or 'none'}, this "
                               f"glancelite needs {head}: run `glancelite-manage db sync`")


def _request_id():
    incoming = request.headers.get("X-Openstack-Request-Id", "")
    if incoming and len(incoming) <= 64 and incoming.isprintable():
        return incoming if incoming.startswith("req-") else f"req-{incoming}"
    # Not uuid4(): its getrandom(2) gives up the GIL, which costs far more than the call
    # under load. A request id needs to be unique, not unguessable; `random` is seeded
    # from the OS at start and again in each forked worker.
    return f"req-{uuid.UUID(int=random.getrandbits(128), version=4)}"


def _install_request_hooks(app, conf, authz):
    authenticate = make_authenticator(conf)
    housekeeping = app.extensions["glancelite"]["housekeeping"]

    @app.before_request
    def identify():
        housekeeping.start()
        g.started = time.monotonic()
        g.request_id = _request_id()
        if request.path not in _UNVERSIONED:
            context = authenticate(request.headers, g.request_id)
            if not context.is_admin and authz.allows(context, "context_is_admin", {}):
                context = replace(context, is_admin=True)  # policy may widen who is admin
            g.context = context
        # No database stores NUL in text (PostgreSQL refuses it): never let one reach SQL.
        if "\x00" in request.path:
            raise NotFound("The resource could not be found.", detail=True)
        if b"%00" in request.query_string:
            raise BadRequest("Null characters are not allowed in the query string.")

    @app.after_request
    def finish(response):
        if request.path not in _UNVERSIONED:
            response.headers["X-Openstack-Request-Id"] = g.get("request_id", "")
        response.status = _STATUS_LINES[response.status_code]
        elapsed = time.monotonic() - g.get("started", time.monotonic())
        LOG.info("%s %s %s %s %d %.1fms", g.get("request_id", "-"), request.remote_addr,
                 request.method, request.full_path.rstrip("?"), response.status_code,
                 elapsed * 1000)
        return response

    @app.teardown_request
    def release(_exc):
        db.session.remove()


def _install_error_handlers(app):
    def render(error):
        return api_errors.error_response(error, request.headers.get("Accept"),
                                         request.accept_mimetypes)

    @app.errorhandler(GlanceError)
    def glance_error(error):
        return render(error)

    @app.errorhandler(HTTPException)
    def http_error(error):
        if error.code == 404:
            if not request.path.startswith("/v2/"):
                return versions_api.multiple_choices()
            return render(NotFound("The resource could not be found.", detail=True))
        if error.code == 405:
            allowed = ", ".join(m for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
                                if m in error.valid_methods)  # Glance's order, not a set's
            return render(MethodNotAllowed(
                f"The method {request.method} is not allowed for this resource. ",
                headers={"Allow": allowed}))
        wrapped = GlanceError(error.description or error.name)
        wrapped.code, wrapped.title = error.code, error.name
        return render(wrapped)

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error):  # e.g. a download while S3 is unreachable
        LOG.error("%s store unavailable: %s", g.get("request_id", "-"), error)
        return render(ServiceUnavailable("The image store failed; retry later.",
                                         headers={"Retry-After": "5"}))

    @app.errorhandler(Exception)
    def unexpected(error):
        LOG.exception("%s unexpected error", g.get("request_id", "-"))
        return render(GlanceError("The server has either erred or is incapable of performing "
                                  "the requested operation."))
