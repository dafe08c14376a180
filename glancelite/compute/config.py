"""The fetcher's configuration: nova.conf option names, read with configobj.

A compute node's existing nova.conf works as is: the options below are read where nova
reads them, anything else in the file is ignored, and `$name` / `${name}` are replaced
from [DEFAULT] as oslo.config does (so `subdirectory_name = _base_$my_ip` works).
Files given later override earlier ones, like oslo's repeated --config-file.

Options that are not nova's are marked "glancelite" in OPTIONS.
"""
import logging
import os
import re
from dataclasses import dataclass, field

from configobj import ConfigObj, ConfigObjError

LOG = logging.getLogger(__name__)

CONFIG_ENV_VAR = "GLANCELITE_COMPUTE_CONFIG"
DEFAULT_PATHS = ("/etc/glancelite/compute.conf", "/etc/nova/nova.conf")
FILE_SCHEMES = ("file", "filesystem")


class ConfigError(Exception):
    """The configuration is missing, unreadable or holds an invalid value."""


def _bool(value):
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value):
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value).split(",")
    return [item.strip() for item in items if item.strip()]


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value):
    """Bytes from `123`, `512M`, `20G`, `1.5T` (binary units; an `iB`/`B` suffix is fine)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*", str(value))
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _int(value):
    return int(str(value).strip())


def _float(value):
    return float(str(value).strip())


def _str(value):
    return str(value).strip()


# section -> option -> (converter, default, deprecated [DEFAULT] name or None)
OPTIONS = {
    "DEFAULT": {
        "state_path": (_str, "/var/lib/nova", None),
        "instances_path": (_str, "$state_path/instances", None),
        "my_ip": (_str, None, None),
        "force_raw_images": (_bool, True, None),
    },
    "glance": {
        "api_servers": (_list, [], None),
        "endpoint_override": (_str, None, None),
        "endpoint": (_str, None, None),
        "allowed_direct_url_schemes": (_list, [], None),
        "num_retries": (_int, 3, None),
        "timeout": (_float, 60.0, None),           # keystoneauth session option
        "cafile": (_str, None, None),
        "certfile": (_str, None, None),
        "keyfile": (_str, None, None),
        "insecure": (_bool, False, None),
        "auth_type": (_str, None, None),
        "token": (_str, None, None),               # admin_token / token_endpoint plugins
        # glancelite: keystonemiddleware-style identity headers, for registries that run
        # with auth_strategy = noauth behind a trusted proxy.
        "project_id": (_str, None, None),
        "user_id": (_str, None, None),
        "roles": (_list, [], None),
        "service_roles": (_list, [], None),
    },
    "image_file_url": {
        "filesystems": (_list, [], None),
    },
    "image_cache": {
        "subdirectory_name": (_str, "_base", "image_cache_subdirectory_name"),
        "remove_unused_base_images": (_bool, True, "remove_unused_base_images"),
        "remove_unused_original_minimum_age_seconds":
            (_int, 86400, "remove_unused_original_minimum_age_seconds"),
        "remove_unused_resized_minimum_age_seconds":
            (_int, 3600, "remove_unused_resized_minimum_age_seconds"),
        "manager_interval": (_int, 2400, "image_cache_manager_interval"),
        "precache_concurrency": (_int, 1, None),
        "max_size": (parse_size, 0, None),          # glancelite: LRU cap in bytes, 0 = none
    },
    "compute": {
        "max_concurrent_disk_ops": (_int, 0, None),
        "vmdk_allowed_types": (_list, ["streamOptimized", "monolithicSparse"], None),
    },
}


@dataclass(frozen=True)
class Filesystem:
    """One [image_file_url:NAME] section: glance's metadata id and our local mount."""
    name: str
    id: str
    mountpoint: str


@dataclass
class ComputeConfig:
    sources: list
    instances_path: str
    force_raw_images: bool
    api_servers: list
    allowed_direct_url_schemes: list
    num_retries: int
    timeout: float
    tls: dict
    token: str | None
    identity: dict
    filesystems: list
    cache: dict
    max_concurrent_disk_ops: int
    vmdk_allowed_types: list
    extra: dict = field(default_factory=dict)

    @property
    def base_dir(self):
        return os.path.join(self.instances_path, self.cache["subdirectory_name"])

    @property
    def lock_dir(self):
        return os.path.join(self.instances_path, "locks")

    def auth_headers(self):
        """Headers that carry credentials; sent to the configured api servers only."""
        headers = {}
        if self.token:
            headers["X-Auth-Token"] = self.token
        headers.update(self.identity)
        return headers


def config_paths(given):
    """The files to read: --config-file values, else $GLANCELITE_COMPUTE_CONFIG, else the
    first of /etc/glancelite/compute.conf and /etc/nova/nova.conf that exists."""
    if given:
        return list(given)
    if os.environ.get(CONFIG_ENV_VAR):
        return [os.environ[CONFIG_ENV_VAR]]
    for path in DEFAULT_PATHS:
        if os.path.exists(path):
            return [path]
    raise ConfigError(f"no configuration file: pass --config-file, set {CONFIG_ENV_VAR}, or "
                      f"create one of {', '.join(DEFAULT_PATHS)}")


def _read(path):
    """Sections of one ini file as plain dicts. Parse errors that oslo.config would accept
    (a repeated key, for example) are logged and the rest of the file is used."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: cannot read configuration file")
    try:
        parsed = ConfigObj(path, list_values=False, interpolation=False, file_error=True,
                           encoding="utf-8")
    except ConfigObjError as exc:
        parsed = getattr(exc, "config", None)
        for error in getattr(exc, "errors", [exc]):
            LOG.warning("%s: %s (line ignored)", path, error)
        if parsed is None:
            raise ConfigError(f"{path}: malformed configuration file: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc})") from exc
    return {name: dict(section) for name, section in parsed.items() if isinstance(section, dict)}


def _merge(paths):
    merged = {}
    for path in paths:
        for name, options in _read(path).items():
            merged.setdefault(name, {}).update(options)
    return merged


_VARIABLE = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")


def _substitute(value, defaults, where, seen=()):
    """oslo.config's $name / ${name} references to [DEFAULT] options ($$ is a dollar)."""
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match):
        if match.group(1) == "$":
            return "$"
        name = match.group(2) or match.group(3)
        if name in seen:
            raise ConfigError(f"{where}: ${name} refers to itself")
        if name not in defaults or defaults[name] is None:
            raise ConfigError(f"{where}: ${name} is used but [DEFAULT] {name} is not set")
        return str(_substitute(defaults[name], defaults, where, (*seen, name)))

    return _VARIABLE.sub(replace, value)


def load(paths=None, overrides=None):
    """Read and check the configuration; `overrides` (section → option → value) win."""
    paths = config_paths(paths)
    raw = _merge(paths)
    for section, options in (overrides or {}).items():
        raw.setdefault(section, {}).update(options)
    where = ", ".join(paths)
    raw_defaults = raw.get("DEFAULT", {})
    defaults = {name: spec[1] for name, spec in OPTIONS["DEFAULT"].items()}
    defaults.update(raw_defaults)
    values = {}
    for section, options in OPTIONS.items():
        given = raw.get(section, {})
        values[section] = {}
        for name, (convert, default, deprecated) in options.items():
            if name in given:
                value = given[name]
            elif deprecated and deprecated in raw_defaults:
                value = raw_defaults[deprecated]
            else:
                value = default
            if value is None:
                values[section][name] = None
                continue
            try:
                value = _substitute(value, defaults, f"{where}: [{section}] {name}")
                values[section][name] = convert(value) if isinstance(value, str) else value
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: [{section}] {name}: {exc}") from exc
    return _build(values, raw, where, paths)


def _build(values, raw, where, paths):
    glance = values["glance"]
    servers = list(glance["api_servers"])
    endpoint = glance["endpoint_override"] or glance["endpoint"]
    if not servers and endpoint:
        servers = [endpoint]
    schemes = [scheme.lower() for scheme in glance["allowed_direct_url_schemes"]]
    unknown = sorted(set(schemes) - set(FILE_SCHEMES))
    if unknown:
        LOG.warning("%s: [glance] allowed_direct_url_schemes: %s not supported here (only %s)",
                    where, ", ".join(unknown), ", ".join(FILE_SCHEMES))
    filesystems = []
    for name in values["image_file_url"]["filesystems"]:
        section = raw.get(f"image_file_url:{name}")
        if section is None:
            raise ConfigError(f"{where}: [image_file_url] filesystems names {name!r} but there "
                              f"is no [image_file_url:{name}] section")
        missing = [key for key in ("id", "mountpoint") if not str(section.get(key, "")).strip()]
        if missing:
            raise ConfigError(f"{where}: [image_file_url:{name}] needs {' and '.join(missing)}")
        mountpoint = str(section["mountpoint"]).strip()
        if not os.path.isabs(mountpoint):
            raise ConfigError(f"{where}: [image_file_url:{name}] mountpoint must be an "
                              f"absolute path")
        filesystems.append(Filesystem(name=name, id=str(section["id"]).strip(),
                                      mountpoint=mountpoint))
    identity = {}
    if glance["project_id"]:
        identity = {"X-Identity-Status": "Confirmed", "X-Project-Id": glance["project_id"]}
        if glance["user_id"]:
            identity["X-User-Id"] = glance["user_id"]
        if glance["roles"]:
            identity["X-Roles"] = ",".join(glance["roles"])
        if glance["service_roles"]:
            identity["X-Service-Roles"] = ",".join(glance["service_roles"])
    token = glance["token"] or os.environ.get("OS_AUTH_TOKEN") or None
    if (glance["auth_type"] or "").lower() in ("none", "noauth"):
        token = glance["token"]
    cache = values["image_cache"]
    subdirectory = cache["subdirectory_name"]
    if not subdirectory or os.sep in subdirectory or subdirectory in (".", ".."):
        raise ConfigError(f"{where}: [image_cache] subdirectory_name must be a plain "
                          f"directory name")
    instances_path = values["DEFAULT"]["instances_path"]
    if not os.path.isabs(instances_path):
        raise ConfigError(f"{where}: [DEFAULT] instances_path must be an absolute path")
    for name in ("num_retries", "max_concurrent_disk_ops"):
        section = "glance" if name == "num_retries" else "compute"
        if values[section][name] < 0:
            raise ConfigError(f"{where}: [{section}] {name} must be >= 0")
    return ComputeConfig(
        sources=paths,
        instances_path=instances_path,
        force_raw_images=values["DEFAULT"]["force_raw_images"],
        api_servers=servers,
        allowed_direct_url_schemes=schemes,
        num_retries=glance["num_retries"],
        timeout=glance["timeout"],
        tls={key: glance[key] for key in ("cafile", "certfile", "keyfile", "insecure")},
        token=token,
        identity=identity,
        filesystems=filesystems,
        cache=cache,
        max_concurrent_disk_ops=values["compute"]["max_concurrent_disk_ops"],
        vmdk_allowed_types=values["compute"]["vmdk_allowed_types"],
    )
