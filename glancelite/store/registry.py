"""The configured stores by name, and which one holds a given URL.

Two configurations, as in Glance:

- single store (the classic one): `[glance_store] default_store = file | s3` takes new
  uploads; `stores = file, s3` may list further store types whose existing locations stay
  readable (e.g. after moving uploads to S3). Store options live in [glance_store].
- several stores (Glance's multi-store): `[DEFAULT] enabled_backends = fast:file, cold:s3`,
  `[glance_store] default_backend = fast`, and one section per backend ([fast], [cold])
  with that store's options plus `store_description` and `weight`. A client picks one with
  the `X-Image-Meta-Store` upload header; each location records its backend in its
  metadata (`"store": "cold"`), which the image's `stores` attribute shows.

StoreRegistry has the Store methods (url_for, add, open, delete, size_of, owns,
blob_owner), so the services use it like one store: uploads go to the default (or
`for_upload(name)`), everything else goes to the store that owns the URL.
"""
import logging
import os
from dataclasses import dataclass, replace

from configobj import ConfigObj, flatten_errors, get_extra_values
from validate import Validator

from glancelite.config import ConfigError, _spec
from glancelite.errors import BadRequest
from glancelite.store.base import StoreUnavailable
from glancelite.store.filesystem import FilesystemStore
from glancelite.store.s3 import S3Store

LOG = logging.getLogger(__name__)

KINDS = ("file", "s3")
# Glance store names accepted in `stores` that glancelite has no driver for (read-only
# web locations): ignored with a warning rather than refusing a glance-api.conf.
_IGNORED_KINDS = ("http", "https")
_ALIASES = {"filesystem": "file"}
# [glance_store] options that only mean something there, not in a backend's section.
_SINGLE_STORE_ONLY = ("default_store", "stores", "default_backend")
_RESERVED_SECTIONS = ("DEFAULT", "glance_store", "database", "image_format", "oslo_policy",
                      "oslo_middleware", "paste_deploy", "keystone_authtoken")
FILE_CHUNK_SIZE = 65536  # what glance's file store reports in /v2/info/stores/detail


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str
    store: object
    description: str | None = None
    weight: int = 0

    def properties(self):
        if self.kind == "file":
            return {"data_dir": self.store.datadir, "chunk_size": FILE_CHUNK_SIZE,
                    "thin_provisioning": False}
        return self.store.properties()


class UploadTarget:
    """The store an upload goes to; in multi-store mode its locations name the backend."""

    def __init__(self, backend, tag):
        self.backend = backend
        self.tag = tag

    @property
    def name(self):
        return self.backend.name

    def add(self, image_id, chunks, size_hint=None):
        blob = self.backend.store.add(image_id, chunks, size_hint=size_hint)
        if self.tag:
            blob = replace(blob, metadata={**blob.metadata, "store": self.backend.name})
        return blob


class StoreRegistry:
    def __init__(self, backends, default, multi):
        self.backends = dict(backends)
        self.default = default
        self.multi = multi
        self.problems = []  # warnings `glancelite-manage check-config` prints

    @property
    def names(self):
        return list(self.backends)

    # -- choosing a store -----------------------------------------------------------------

    def for_upload(self, name=None):
        """The upload target: `name` (the X-Image-Meta-Store header) or the default.
        Without several stores the header is ignored, as in Glance."""
        if not self.multi or name is None:
            return UploadTarget(self.backends[self.default], self.multi)
        if name not in self.backends:
            raise BadRequest(f"Unknown scheme '{name}' found in URI")
        return UploadTarget(self.backends[name], True)

    def backend_of(self, url):
        """The backend whose store holds `url`, None when none does."""
        for backend in self.backends.values():
            if backend.store.owns(url):
                return backend
        return None

    def name_of(self, url):
        backend = self.backend_of(url)
        return backend.name if backend else None

    # -- the Store protocol, by URL -------------------------------------------------------

    def add(self, image_id, chunks, size_hint=None):
        return self.for_upload().add(image_id, chunks, size_hint=size_hint)

    def url_for(self, image_id):
        """Where the default store would put the image (prefer blob_owner(url) == id)."""
        return self.backends[self.default].store.url_for(image_id)

    def urls_for(self, image_id):
        """Where each store would keep the image's own bytes (to find ones no row records)."""
        return [backend.store.url_for(image_id) for backend in self.backends.values()]

    def owns(self, url):
        return self.backend_of(url) is not None

    def blob_owner(self, url):
        backend = self.backend_of(url)
        return backend.store.blob_owner(url) if backend else None

    def open(self, url, offset, length=None):
        backend = self.backend_of(url)
        if backend is None:
            LOG.error("no configured store holds %s", url)
            raise StoreUnavailable(f"no configured store holds {url}")
        return backend.store.open(url, offset, length)

    def delete(self, url):
        backend = self.backend_of(url)
        if backend is None:  # never delete what no configured store holds
            LOG.warning("not deleting %s: no configured store holds it", url)
            return
        backend.store.delete(url)

    def size_of(self, url):
        backend = self.backend_of(url)
        return backend.store.size_of(url) if backend else None

    def discard_partial(self, image_id):
        """Remove what unfinished uploads of the image left in any store (a temporary file,
        an unfinished S3 multipart upload); never a finished blob."""
        for backend in self.backends.values():
            backend.store.discard_partial(image_id)

    # -- what the API shows ---------------------------------------------------------------

    def stores_attribute(self, locations):
        """The image's `stores` (comma string) in multi-store mode, else None. A location
        without a `store` in its metadata (written before multi-store was enabled) is
        named after the backend that owns its URL, as Glance fills it in."""
        if not self.multi:
            return None
        names = [location.meta_data.get("store") or self.name_of(location.url)
                 for location in locations]
        names = [name for name in names if name]
        return ",".join(names) or None

    def describe(self, detail=False):
        """GET /v2/info/stores (and /detail) entries, in enabled_backends order."""
        stores = []
        for backend in self.backends.values():
            entry = {"id": backend.name}
            if backend.description:
                entry["description"] = backend.description
            if backend.name == self.default:
                entry["default"] = "true"
            if detail:
                entry["type"] = backend.kind
                entry["properties"] = backend.properties()
                entry["weight"] = backend.weight
            stores.append(entry)
        return stores


# -- building from the configuration ----------------------------------------------------

def from_config(conf):
    """The StoreRegistry the configuration describes; ConfigError for a bad store option."""
    where = conf["__file__"]
    if conf["DEFAULT"]["enabled_backends"]:
        return _multi_store(conf, where)
    options = conf["glance_store"]
    default = options["default_store"]
    kinds = [default]
    for entry in _entries(options["stores"]):
        kind = _ALIASES.get(entry, entry)
        if kind in _IGNORED_KINDS:
            LOG.warning("%s: [glance_store] stores: glancelite has no %r store; ignored",
                        where, kind)
        elif kind not in KINDS:
            raise ConfigError(f"{where}: [glance_store] stores: unknown store {kind!r} "
                              f"(glancelite has {', '.join(KINDS)})")
        elif kind not in kinds:
            kinds.append(kind)
    backends = {kind: Backend(kind, kind, _make(kind, options, where, "glance_store"))
                for kind in kinds}
    return _checked(StoreRegistry(backends, default, multi=False), where)


def _multi_store(conf, where):
    backends = {}
    for entry in _entries(conf["DEFAULT"]["enabled_backends"]):
        name, sep, kind = (part.strip() for part in entry.partition(":"))
        kind = _ALIASES.get(kind, kind)
        if not sep or not name or not kind:
            raise ConfigError(f"{where}: [DEFAULT] enabled_backends: {entry!r} is not "
                              f"'<name>:<type>'")
        if kind not in KINDS:
            raise ConfigError(f"{where}: [DEFAULT] enabled_backends: {name}: unknown store "
                              f"type {kind!r} (glancelite has {', '.join(KINDS)})")
        if name in backends or name in _RESERVED_SECTIONS or name.startswith("os_glance_"):
            raise ConfigError(f"{where}: [DEFAULT] enabled_backends: {name!r} is used twice "
                              f"or reserved")
        options = _backend_options(conf.get(name, {}), name, where)
        backends[name] = Backend(name, kind, _make(kind, options, where, name),
                                 options["store_description"], options["weight"])
    default = conf["glance_store"]["default_backend"]
    if default not in backends:
        raise ConfigError(f"{where}: [glance_store] default_backend must name one of the "
                          f"enabled_backends ({', '.join(backends)}), not {default!r}")
    return _checked(StoreRegistry(backends, default, multi=True), where)


def _backend_options(raw, name, where):
    """A backend's section validated against the store options of [glance_store]."""
    template = _spec()["glance_store"]
    spec = ConfigObj({key: value for key, value in template.items()
                      if key not in _SINGLE_STORE_ONLY}, _inspec=True)
    section = ConfigObj(dict(raw), configspec=spec, interpolation=False)
    result = section.validate(Validator(), preserve_errors=True)
    if result is not True:
        problems = [f"[{name}] {key}: {error or 'missing value'}"
                    for _sections, key, error in flatten_errors(section, result)]
        raise ConfigError(f"{where}: invalid configuration: " + "; ".join(problems))
    for _sections, key in get_extra_values(section):
        LOG.warning("%s: unknown option [%s] %s ignored", where, name, key)
    return section.dict()


def _make(kind, options, where, section):
    try:
        if kind == "file":
            perm = int(options["filesystem_store_file_perm"], 8)
            return FilesystemStore(options["filesystem_store_datadir"], perm,
                                   options["filesystem_store_metadata_file"],
                                   drop_behind=options["filesystem_store_drop_behind"])
        return S3Store(
            host=options["s3_store_host"], access_key=options["s3_store_access_key"],
            secret_key=options["s3_store_secret_key"], bucket=options["s3_store_bucket"],
            create_bucket_on_put=options["s3_store_create_bucket_on_put"],
            bucket_url_format=options["s3_store_bucket_url_format"],
            large_object_size=options["s3_store_large_object_size"],
            chunk_size=options["s3_store_large_object_chunk_size"],
            thread_pools=options["s3_store_thread_pools"],
            cacert=options["s3_store_cacert"], region_name=options["s3_store_region_name"])
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: [{section}]: {exc}") from exc


def _checked(registry, where):
    """Two backends must not share a directory or a bucket: deleting through one would
    remove the other's bytes, and a URL could not say which backend it belongs to."""
    seen = {}
    for backend in registry.backends.values():
        store = backend.store
        place = (os.path.realpath(store.datadir) if backend.kind == "file"
                 else (store.netloc, store.bucket))
        if place in seen:
            raise ConfigError(f"{where}: stores {seen[place]!r} and {backend.name!r} use the "
                              f"same place {place}")
        seen[place] = backend.name
        if backend.kind == "s3" and store.endpoint.startswith("http://") \
                and not _loopback(store.netloc):
            registry.problems.append(f"store {backend.name!r}: S3 endpoint {store.endpoint} is "
                                     f"plain http: keys are signed, but image bytes travel "
                                     f"unencrypted")
    return registry


def _entries(values):
    """A list option's items; "a, b" given as one string (overrides) counts as two."""
    return [entry.strip() for value in values for entry in value.split(",") if entry.strip()]


def _loopback(netloc):
    host = netloc.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")
