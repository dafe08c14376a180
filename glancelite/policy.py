"""The oslo.policy rule language (policy.json / policy.yaml), written for glancelite.

Every rule is compiled once, at load, into a tree of small closures `check(target, creds)`,
so a decision is a handful of function calls. Semantics follow oslo.policy 6.x (reference
§B): `""`/`@` allow, `!` denies, `role:X` compares case-insensitively, `rule:N` evaluates N
(an undefined N falls back to the `default` rule, or denies without one), any other
`kind:match` compares `match % target` with a literal kind (`'public'`, `True`) or with the
value at the dotted path `kind` in creds (lists match any element), as strings,
case-sensitively. `and`/`or`/`not` (any case) and parentheses; not > and > or. A list value
is the legacy form: outer list OR, inner lists AND, one check per string.

Deliberate differences from oslo.policy, all failing closed or loudly, at load:
- `http:`/`https:` checks, a `rule:` cycle (also through the `default` fallback), a missing,
  empty or malformed file, a duplicated policy name, a name or value of the wrong type
  (oslo: `null` allows everything, `1` is a TypeError) -> PolicyError naming file and rule.
- A check that makes oslo.policy raise at evaluation (a stray `%` in a match, a creds path
  through a non-mapping, a kind such as `1a` that is no Python literal) is False here.
- Tuples in creds are treated like lists.
Unparsable rules deny, as in oslo.policy; those and other suspicious rules (undefined
`rule:` references, a check without `:`) are logged and listed in `Policy.problems`.
"""
import ast
import json
import logging
import re

from glancelite.config import ConfigError

LOG = logging.getLogger(__name__)
DEFAULT_RULE = "default"
_WHITESPACE = re.compile(r"\s+")
_OPERATORS = ("and", "or", "not")
_CACHE_SIZE = 1024


class PolicyError(ConfigError):
    """The policy rules cannot be used; the message names the file and the rule."""


class _Unparsable(Exception):
    pass


def _true(target, creds):
    return True


def _false(target, creds):
    return False


def _not(fn):
    if fn in (_true, _false):
        return _false if fn is _true else _true
    return lambda t, c: not fn(t, c)


def _any(fns):
    fns = [fn for fn in fns if fn is not _false]
    if _true in fns or not fns:
        return _true if fns else _false
    if len(fns) <= 2:
        return fns[0] if len(fns) == 1 else (lambda t, c, a=fns[0], b=fns[1]: a(t, c) or b(t, c))

    def check(t, c):
        for fn in fns:
            if fn(t, c):
                return True
        return False
    return check


def _all(fns):
    fns = [fn for fn in fns if fn is not _true]
    if _false in fns or not fns:
        return _false if fns else _true
    if len(fns) <= 2:
        return fns[0] if len(fns) == 1 else (lambda t, c, a=fns[0], b=fns[1]: a(t, c) and b(t, c))

    def check(t, c):
        for fn in fns:
            if not fn(t, c):
                return False
        return True
    return check


def _formatter(match):
    """target -> `match % target`, or None where oslo.policy gives False (or raises)."""
    if "%" not in match:
        return lambda target: match

    def fmt(target):
        try:
            return match % target
        except (KeyError, ValueError, TypeError):
            return None
    return fmt


def _has_role(creds, role):
    try:
        return role in map(str.lower, creds["roles"])
    except (KeyError, TypeError):  # no roles, or not a list of strings (oslo.policy raises)
        return False


def _role_check(match):
    if "%" not in match:
        role = match.lower()
        return lambda t, c: _has_role(c, role)
    fmt = _formatter(match)
    return lambda t, c: (role := fmt(t)) is not None and _has_role(c, role.lower())


def _find(value, path, match):
    """Does the value at `path` inside `value` (any element of a list on the way) equal match?"""
    for i, key in enumerate(path):
        try:
            value = value[key]
        except (LookupError, TypeError):  # oslo.policy: KeyError -> False, TypeError raises
            return False
        if isinstance(value, (list, tuple)):
            return any(_find(item, path[i + 1:], match) for item in value)
    return match == (value if type(value) is str else str(value))


def _generic_check(kind, match):
    """`kind:match`; returns None when kind is no Python literal and no path oslo can walk."""
    fmt = _formatter(match)
    try:
        literal = str(ast.literal_eval(kind))
    except ValueError:  # not a literal: a dotted path into creds
        path = kind.split(".")
        if len(path) > 1:
            return lambda t, c: (m := fmt(t)) is not None and _find(c, path, m)

        def check(t, c):  # the common case, `project_id:%(owner)s`, without a loop
            m = fmt(t)
            try:
                value = c[kind]
            except (LookupError, TypeError):
                return False
            return m == value if type(value) is str else m is not None and _find(c, path, m)
        return check
    except Exception:  # SyntaxError and friends: oslo.policy raises at every evaluation
        return None
    if "%" not in match:
        return _true if match == literal else _false
    return lambda t, c: fmt(t) == literal


def _shape_ok(rule):
    return isinstance(rule, str) or isinstance(rule, list) and all(
        isinstance(item, str) or isinstance(item, list) and all(isinstance(s, str) for s in item)
        for item in rule)


class Policy:
    """A validated, compiled set of named rules. `creds`: a dict (roles, project_id,
    user_id, is_admin, ...); `target`: a dict. Both are only read."""

    def __init__(self, rules, source="<policy>", default_rule=DEFAULT_RULE):
        self.source, self.default_rule = source, default_rule
        self.problems, self._loaded = [], False  # what was logged while loading the rules
        for name, rule in rules.items():
            if not isinstance(name, str):
                raise PolicyError(f"{source}: policy names must be strings, not {name!r}")
            if not _shape_ok(rule):
                raise PolicyError(f"{source}: policy {name!r}: a rule must be a string or a legacy "
                                  f"list of lists of strings, not {rule!r}")
        self.names = frozenset(rules)
        self._fns, self._cache, edges = {}, {}, {}
        for name, rule in rules.items():
            edges[name] = []
            self._fns[name] = self._compile(rule, f"policy {name!r}", edges[name])
        self._refuse_cycles(edges)
        self._fallback = self._fns.get(default_rule, _false)
        self._loaded = True

    @classmethod
    def load(cls, path, default_rule=DEFAULT_RULE):
        """Same as load_policy_file(path)."""
        return load_policy_file(path, default_rule)

    def __repr__(self):
        return f"<Policy {self.source}: {len(self.names)} rules>"

    def enforce(self, name, target, creds):
        """The decision of policy `name`; an undefined name uses the default rule."""
        return self._fns.get(name, self._fallback)(target, creds)

    def check(self, rule, target, creds):
        """Evaluate a check string (or legacy list) against these rules, e.g. `rule:x`."""
        key = rule if isinstance(rule, str) else json.dumps(rule)
        fn = self._cache.get(key)
        if fn is None:
            if not _shape_ok(rule):
                raise PolicyError(f"{self.source}: not a rule: {rule!r}")
            fn = self._compile(rule, f"check {rule!r}", [])
            if len(self._cache) < _CACHE_SIZE:
                self._cache[key] = fn
        return fn(target, creds)

    # -- compiling ---------------------------------------------------------------------

    def _report(self, level, what, message):
        message = f"{self.source}: {what}: {message}"
        LOG.log(level, "%s", message)
        if not self._loaded:  # check strings compiled later are only logged
            self.problems.append(message)

    def _compile(self, rule, what, refs):
        if isinstance(rule, list):  # legacy: [[a, b], [c]] = (a and b) or c; "x" = ["x"]
            if not rule:
                return _true
            return _any([_all([self._atom(s, what, refs) for s in ([item] if isinstance(item, str)
                                                                      else item)])
                         for item in rule if item])
        if not rule:
            return _true
        tokens = self._tokenize(rule, what, refs)[::-1]  # a stack: next token last

        def disjunction():
            terms = [conjunction()]
            while tokens and tokens[-1] == "or":
                tokens.pop()
                terms.append(conjunction())
            return _any(terms)

        def conjunction():
            terms = [unary()]
            while tokens and tokens[-1] == "and":
                tokens.pop()
                terms.append(unary())
            return _all(terms)

        def unary():
            token = tokens.pop() if tokens else None
            if token == "not":
                return _not(unary())
            if token == "(":
                inner = disjunction()
                if not tokens or tokens.pop() != ")":
                    raise _Unparsable
                return inner
            if callable(token):
                return token
            raise _Unparsable  # end of rule, ")", "and", "or" or a quoted string

        try:
            fn = disjunction()
            if tokens:
                raise _Unparsable
            return fn
        except (_Unparsable, RecursionError):
            self._report(logging.ERROR, what, f"cannot parse rule {rule!r}; it denies every request")
            return _false

    def _tokenize(self, text, what, refs):
        """Whitespace-separated words; leading "(" and trailing ")" are peeled off each word."""
        tokens = []
        for word in _WHITESPACE.split(text):
            core = word.lstrip("(")
            tokens.extend("(" * (len(word) - len(core)))
            bare = core.rstrip(")")
            if bare.lower() in _OPERATORS:
                tokens.append(bare.lower())
            elif bare and len(core) >= 2 and core[0] == core[-1] and core[0] in "'\"":
                tokens.append("quoted string")  # oslo.policy cannot reduce these
            elif bare:
                tokens.append(self._atom(bare, what, refs))
            tokens.extend(")" * (len(core) - len(bare)))
        return tokens

    def _atom(self, text, what, refs):
        if text in ("@", "!"):
            return _true if text == "@" else _false
        kind, colon, match = text.partition(":")
        if not colon:
            self._report(logging.WARNING, what, f"{text!r} is not a check (no ':'); it is always false")
            return _false
        if kind in ("http", "https"):
            raise PolicyError(f"{self.source}: {what}: {text!r}: {kind}: checks (remote calls at "
                              f"authorization time) are not supported")
        if kind == "rule":
            return self._reference(match, what, refs)
        if kind == "role":
            return _role_check(match)
        fn = _generic_check(kind, match)
        if fn is None:
            self._report(logging.WARNING, what, f"{text!r}: {kind!r} is neither a Python literal nor a "
                                                f"creds path; the check is always false")
            return _false
        return fn

    def _reference(self, name, what, refs):
        if name in self.names:
            resolved = name
        elif self.default_rule in self.names:
            resolved = self.default_rule
            self._report(logging.WARNING, what, f"rule:{name} is not defined; it uses rule "
                                                f"{self.default_rule!r} instead")
        else:
            self._report(logging.WARNING, what, f"rule:{name} is not defined and there is no "
                                                f"{self.default_rule!r} rule; it is always false")
            return _false
        refs.append((resolved, name))
        fns = self._fns
        return lambda t, c: fns[resolved](t, c)

    def _refuse_cycles(self, edges):
        done, path = set(), []  # path: [(name, label)] of the walk in progress

        def visit(name, label):
            path.append((name, label))
            for nxt, written in edges.get(name, ()):
                nxt_label = nxt if nxt == written else f"{nxt} (for undefined rule:{written})"
                on_path = [n for n, _ in path]
                if nxt in on_path:
                    cycle = [lab for _, lab in path[on_path.index(nxt):]] + [nxt_label]
                    raise PolicyError(f"{self.source}: policies form a cycle: {' -> '.join(cycle)}")
                if nxt not in done:
                    visit(nxt, nxt_label)
            path.pop()
            done.add(name)

        for name in edges:
            if name not in done:
                visit(name, name)


def _without_duplicates(path):
    def pairs_hook(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise PolicyError(f"{path}: policy {key!r} is defined more than once")
            seen.add(key)
        return dict(pairs)
    return pairs_hook


def _parse_yaml(text, path):
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if isinstance(node, yaml.MappingNode):
            keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
            _without_duplicates(path)([(key, None) for key in keys])
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: malformed policy file: {exc}") from exc


def load_policy_file(path, default_rule=DEFAULT_RULE):
    """Read, validate and compile a policy.json / policy.yaml; PolicyError if unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc}") from exc
    try:  # JSON first; anything else (YAML, or JSON with # comments) as YAML, as oslo.policy does
        rules = json.loads(text, object_pairs_hook=_without_duplicates(path))
    except json.JSONDecodeError as exc:
        try:
            rules = _parse_yaml(text, path)
        except PolicyError:
            if path.endswith(".json"):
                raise PolicyError(f"{path}: malformed policy file: {exc}") from exc
            raise
    if rules is None:  # nothing but whitespace and comments
        raise PolicyError(f"{path}: policy file is empty (write {{}} to deny everything)")
    if not isinstance(rules, dict):
        raise PolicyError(f"{path}: a policy file must map policy names to rules, "
                          f"not be a {type(rules).__name__}")
    policy = Policy(rules, source=path, default_rule=default_rule)
    if not rules:
        LOG.warning("%s: the policy file has no rules; every request is denied", path)
    return policy
