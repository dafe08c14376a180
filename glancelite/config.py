"""Load and validate the ini file (configobj + a validate spec).

Option names follow glance-api.conf. A bad file stops the service at start with a
message naming the file and the option, instead of failing later on a request.
"""
import logging
import os
from importlib import resources

from configobj import ConfigObj, ConfigObjError, flatten_errors, get_extra_values
from validate import Validator

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG_PATH = "conf/glancelite.conf"
CONFIG_ENV_VAR = "GLANCELITE_CONFIG"


class ConfigError(Exception):
    """The configuration file is missing or holds an invalid value."""


def default_config_path():
    """`--config-file` default: $GLANCELITE_CONFIG, then conf/glancelite.conf."""
    return os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH


# configobj's validate() skips a top-level section called DEFAULT, so it is
# validated under this alias and renamed back afterwards.
_DEFAULT_ALIAS = "_DEFAULT_"


def _aliased(sections):
    return {(_DEFAULT_ALIAS if name == "DEFAULT" else name): value for name, value in sections.items()}


def _section_name(name):
    return "DEFAULT" if name == _DEFAULT_ALIAS else name


def _spec():
    text = resources.files("glancelite").joinpath("config.spec").read_text()
    text = text.replace("[DEFAULT]", f"[{_DEFAULT_ALIAS}]")
    return ConfigObj(text.splitlines(), list_values=False, interpolation=False, _inspec=True)


def load_config(path=None, overrides=None):
    """Return the validated configuration as nested dicts (section → option → value).

    `overrides` (section → option → value) are applied on top of the file; tests use
    them. With `path=None` only the defaults and overrides are used.
    """
    try:
        source = ConfigObj(path, file_error=True, interpolation=False) if path else ConfigObj()
    except (OSError, IOError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc})") from exc
    except ConfigObjError as exc:
        raise ConfigError(f"{path}: malformed configuration file: {exc}") from exc
    conf = ConfigObj(_aliased(source.dict()), configspec=_spec(), interpolation=False)
    for section, options in _aliased(overrides or {}).items():
        conf.setdefault(section, {}).update(options)
    result = conf.validate(Validator(), preserve_errors=True)
    where = path or "<defaults>"
    if result is not True:
        problems = []
        for sections, key, error in flatten_errors(conf, result):
            where_in_file = "/".join(_section_name(name) for name in sections)
            name = f"[{where_in_file}] {key}" if key else f"[{where_in_file}]"
            reason = error if error else "missing section or value"
            problems.append(f"{name}: {reason}")
        raise ConfigError(f"{where}: invalid configuration: " + "; ".join(problems))
    backends = {entry.partition(":")[0].strip() for item in conf[_DEFAULT_ALIAS]["enabled_backends"]
                for entry in item.split(",")}
    for sections, name in get_extra_values(conf):
        if not sections and name in backends:
            continue  # a store backend's section: glancelite.store.registry validates it
        section = "/".join(_section_name(part) for part in sections) or "top level"
        LOG.warning("%s: unknown option [%s] %s ignored", where, section, name)
    values = {_section_name(name): options for name, options in conf.dict().items()}
    return _checked(values, where)


def _checked(conf, where):
    default = conf["DEFAULT"]
    if default["limit_param_default"] > default["api_limit_max"]:
        raise ConfigError(f"{where}: invalid configuration: [DEFAULT] limit_param_default "
                          f"must not exceed api_limit_max")
    conf["__file__"] = where
    return conf
