"""Property protection: which roles or policies may create/read/update/delete an extra property.

The file format and the decisions are Glance's (`property_protection_file`, formats `roles` and
`policies`), but the file is validated completely when it is loaded, so a bad file stops the
service at start instead of failing requests. Deliberate differences from Glance:
- sections whose name starts with `os_glance` are ignored (with a warning) and properties whose
  name *starts with* `os_glance` are allowed for everybody, which is what Glance's injected
  `[os_glance.*]` rule makes observable; a name merely *containing* `os_glance` follows the
  operator's sections (Glance lets the injected rule shadow them);
- in the `policies` format the `<value>` is checked as `rule:<value>` directly, instead of being
  registered as a rule named `<section>:<op>` that could overwrite a policy.json entry;
- a `%` interpolation error is reported like every other problem, naming section and operation.
"""
import configparser
import functools
import logging
import re

from glancelite.config import ConfigError

LOG = logging.getLogger(__name__)
OPERATIONS = ("create", "read", "update", "delete")
FORMATS = ("roles", "policies")
RESERVED_PREFIX = "os_glance"


class ProtectionError(ConfigError):
    """The property protection file is missing or invalid; the service must not start."""


class PropertyProtection:
    """Rules of one protection file, in file order: [(section, compiled regex, {op: values})];
    values: a frozenset of lower-cased roles, or a one-item list [policy name]; "@"/"!" as such."""

    def __init__(self, path, rule_format="roles", policy=None):
        self.path, self.rule_format, self.policy = path, str(rule_format).strip().lower(), policy
        if self.rule_format not in FORMATS:
            raise ProtectionError(f"property protection file {path}: property_protection_rule_format "
                                  f"{rule_format!r} is invalid: choose 'roles' or 'policies'")
        if self.rule_format == "policies" and policy is None:
            self._fail("the 'policies' format needs a policy file")
        self.rules = [self._section(name) for name in self._read(path)]
        del self._parser
        self._rules_for = functools.lru_cache(maxsize=8192)(self._first_match)

    def _fail(self, message):
        raise ProtectionError(f"property protection file {self.path}: {message}")

    def _read(self, path):
        parser = configparser.ConfigParser()  # stock semantics: '=' or ':', lower-cased keys, strict
        try:
            with open(path, encoding="utf-8") as stream:
                parser.read_file(stream)
        except OSError as exc:
            self._fail(f"cannot read it ({exc.strerror or exc})")
        except (configparser.Error, UnicodeDecodeError) as exc:
            self._fail(f"malformed ini file: {exc}")
        self._parser = parser
        for name in parser.sections():
            if name.startswith(RESERVED_PREFIX):
                LOG.warning("property protection file %s: section [%s] ignored: properties starting "
                            "with %r are reserved", path, name, RESERVED_PREFIX)
        return [name for name in parser.sections() if not name.startswith(RESERVED_PREFIX)]

    def _section(self, name):
        try:
            regex = re.compile(name)
        except re.error as exc:
            self._fail(f"section [{name}] is not a valid regular expression: {exc}")
        perms = {}
        for op in OPERATIONS:
            if not self._parser.has_option(name, op):
                extra = sorted(set(self._parser.options(name)) - set(OPERATIONS))
                hint = f" (unknown options: {', '.join(extra)})" if extra else ""
                self._fail(f"section [{name}] has no '{op}' operation{hint}; "
                           f"create, read, update and delete must all be given")
            try:
                value = self._parser.get(name, op)
            except configparser.InterpolationError as exc:
                self._fail(f"section [{name}] {op}: bad '%' interpolation: {exc}")
            perms[op] = self._values(name, op, value)
        return name, regex, perms

    def _values(self, name, op, value):
        if not value:
            LOG.warning("property protection file %s: [%s] %s is empty: nobody may %s matching "
                        "properties", self.path, name, op, op)
            return []
        if self.rule_format == "policies":
            if "," in value:
                self._fail(f"section [{name}] {op} = {value}: only one policy per operation is allowed "
                           f"(combine policies in the policy file)")
            if value not in ("@", "!") and value not in getattr(self.policy, "names", (value,)):
                LOG.warning("property protection file %s: [%s] %s: policy %r is not defined, the "
                            "policy file's default rule applies", self.path, name, op, value)
            return [value]
        values = frozenset(item.strip().lower() for item in value.split(","))  # roles: case-insensitive
        if "@" in values and "!" in values:
            self._fail(f"section [{name}] {op} = {value}: '@' and '!' cannot be used together")
        return values

    def _first_match(self, name):
        return next((perms for _, regex, perms in self.rules if regex.search(name)), None)

    def allowed(self, name, op, roles, creds):
        """True if a caller with `roles` (and policy `creds`) may perform `op` on property `name`."""
        if op not in OPERATIONS:
            return False
        name = str(name)
        if name.startswith(RESERVED_PREFIX):
            return True
        perms = self._rules_for(name)
        if not perms or not perms[op] or "!" in perms[op]:
            return False
        if "@" in perms[op]:
            return True
        if self.rule_format == "roles":
            return any(role.lower() in perms[op] for role in roles or ())
        policy_creds = {k: v for k, v in (creds or {}).items() if k != "is_admin"}  # as oslo.context
        return bool(self.policy.check(f"rule:{perms[op][0]}", {}, policy_creds))

    def readable(self, properties, roles, creds):
        """The `properties` dict without the keys the caller may not read (for responses)."""
        return {key: value for key, value in properties.items() if self.allowed(key, "read", roles, creds)}

    def denied(self, names, op, roles, creds):
        """The first of `names` the caller may not `op`, or None when all are allowed."""
        return next((name for name in names if not self.allowed(name, op, roles, creds)), None)


def from_config(conf, policy=None):
    """The protection of `[DEFAULT] property_protection_file`, or None when it is not set."""
    default = conf.get("DEFAULT", {})
    path = default.get("property_protection_file")
    if not path:
        return None
    return PropertyProtection(path, default.get("property_protection_rule_format") or "roles", policy)
