"""The policy engine (glancelite/policy.py): the oslo.policy rule language, table-driven.

Cases follow ../shared/reference/policy-and-protection.md §B.1-§B.3; the differential test
at the end checks every decision against real oslo.policy (a test-only dependency).
"""
import itertools
import json
import logging
import tempfile
import time
from pathlib import Path

import pytest

try:  # the test extra: the differential test needs both
    import hypothesis
    import oslo_policy  # noqa: F401
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    hypothesis = None

from glancelite.config import ConfigError
from glancelite.policy import Policy, PolicyError, load_policy_file

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "policies" / "policy.json"

ADMIN = dict(roles=["admin"], project_id="p1", user_id="u1", is_admin=True)
MEMBER = dict(roles=["member"], project_id="p1", user_id="u2", is_admin=False)
OTHER = dict(roles=["member", "reader"], project_id="p2", user_id="u3", is_admin=False)
NOBODY = dict(roles=[], project_id="p3", user_id="u4", is_admin=False)
IMAGE = dict(owner="p1", project_id="p1", visibility="public", enabled=True, num=1, role="Member")


def decide(rule, target=IMAGE, creds=MEMBER, **more_rules):
    return Policy(dict(more_rules, it=rule)).enforce("it", target, creds)


# -- B.1 syntax -----------------------------------------------------------------------------

@pytest.mark.parametrize("rule, expected", [
    ("", True),
    ("@", True),
    ("!", False),
    ("role:member", True),
    ("(role:member)", True),
    ("((role:member))", True),
    ("( role:member )", True),
    ("(project_id:%(owner)s)", True),                  # parens inside the check survive
    ("role:member AND project_id:%(owner)s", True),    # operators in any case
    ("role:admin Or role:member", True),
    ("NOT role:admin", True),
    ("not not role:member", True),
    ("@ or ! and !", True),                            # not > and > or: @ or (! and !)
    ("! and @ or @", True),                            # (! and @) or @
    ("! and (@ or @)", False),
    ("not @ or @", True),                              # (not @) or @
    ("not (@ or @)", False),
    ("not @ and @", False),
    ("(role:admin or role:member) and not role:reader", True),
    ("role:admin or (role:member and (project_id:p2 or project_id:p1))", True),
    ("admin", False),                                  # no ':' -> a false atom, not a parse error
    ("admin or @", True),
    ("('admin') or @", True),                          # not fully quoted: a false atom
    ("role:admin\tor\n role:member", True),            # any whitespace separates
])
def test_syntax(rule, expected):
    assert decide(rule) is expected


@pytest.mark.parametrize("rule", [
    "role:member or", "or role:member", "(role:member", "role:member)", "and", "not",
    "role:member role:admin", "'role:member'", "\"x\" or @", "@ or 'a'", "()", "@ (", "@ and and @",
    "not ( )",
])
def test_unparsable_rule_denies_and_is_logged_by_name(rule, caplog):
    with caplog.at_level(logging.ERROR, logger="glancelite.policy"):
        policy = Policy({"it": rule, "default": "@"}, source="p.json")
    assert policy.enforce("it", IMAGE, ADMIN) is False
    assert f"p.json: policy 'it': cannot parse rule {rule!r}" in caplog.text
    assert policy.problems == [f"p.json: policy 'it': cannot parse rule {rule!r}; it denies every request"]


@pytest.mark.parametrize("rule, expected", [
    ([], True),
    ([[]], False),                                     # only empty alternatives
    ([""], False),
    ([["role:admin"], ["role:member"]], True),         # outer OR
    ([["role:member", "project_id:p2"]], False),       # inner AND
    ([["role:member", "project_id:%(owner)s"]], True),
    (["role:member"], True),                           # a bare string: one-element AND
    (["role:admin", ["role:member", "@"]], True),
    ([["role:member", "!"]], False),
    (["role:admin or role:member"], False),            # one check per string: role "admin or role:member"
    (["(role:member)"], False),                        # no parentheses either: kind "(role"
    (["@"], True),
    ([["!"], [], ["@"]], True),
])
def test_legacy_list_form(rule, expected):
    assert decide(rule) is expected


@pytest.mark.parametrize("rule", [
    "http://authz.example/check", "role:admin or https://x/y", "(https:x)", ["http:x"], [["@", "https:x"]],
])
def test_remote_checks_are_refused_at_load(rule):
    with pytest.raises(PolicyError, match=r"p\.json: policy 'it': .*(http|https): checks .* not supported"):
        Policy({"ok": "", "it": rule}, source="p.json")


def test_remote_check_kinds_are_case_sensitive():
    assert decide("HTTP://x") is False  # a generic creds check, like oslo.policy


# -- B.2 semantics --------------------------------------------------------------------------

@pytest.mark.parametrize("rule, target, creds, expected", [
    # role: case-insensitive on both sides, %-substitution from the target
    ("role:Admin", {}, dict(roles=["admin"]), True),
    ("role:admin", {}, dict(roles=["ADMIN"]), True),
    ("role:admin", {}, dict(roles=["member"]), False),
    ("role:admin", {}, {}, False),                                  # no roles key
    ("role:admin", {}, dict(roles=None), False),
    ("role:%(role)s", dict(role="MEMBER"), dict(roles=["member"]), True),
    ("role:%(role)s", {}, dict(roles=["member"]), False),           # KeyError -> False
    # generic checks: match % target, compared as strings, case-sensitively
    ("project_id:%(owner)s", dict(owner="p1"), dict(project_id="p1"), True),
    ("project_id:%(owner)s", dict(owner="P1"), dict(project_id="p1"), False),
    ("project_id:%(owner)s", {}, dict(project_id="p1"), False),     # missing target key
    ("project_id:%(owner)s", dict(owner="p1"), {}, False),          # missing creds key
    ("project_id:%(owner)s", dict(owner=None), dict(project_id=None), True),  # 'None' == 'None'
    ("project_id:p1", {}, dict(project_id="p1"), True),
    ("project_id:100%", {}, dict(project_id="100%"), False),        # stray % (oslo raises)
    ("project_id:%(owner)d", dict(owner="p1"), dict(project_id="p1"), False),  # oslo raises
    ("project_id:%%", {}, dict(project_id="%"), True),
    ("is_admin:True", {}, dict(is_admin=True), True),
    ("is_admin:True", {}, dict(is_admin=False), False),
    ("is_admin:True", {}, dict(is_admin="True"), True),
    ("is_admin:true", {}, dict(is_admin=True), False),              # str(True) == 'True'
    ("is_admin:True", {}, {}, False),
    ("roles:admin", {}, dict(roles=["member", "admin"]), True),     # a list matches any element
    ("roles:admin", {}, dict(roles=["Admin"]), False),              # ... case-sensitively
    ("roles:admin", {}, dict(roles=("admin",)), True),              # tuples like lists (glancelite)
    ("user.name:alice", {}, dict(user=dict(name="alice")), True),   # dotted path into creds
    ("user.name:alice", {}, dict(user=dict(id="x")), False),
    ("user.name:alice", {}, dict(user="alice"), False),             # path through a str (oslo raises)
    ("user.name:alice", {}, dict(user=[dict(name="bob"), dict(name="alice")]), True),
    ("user.name:%(owner)s", dict(owner="alice"), dict(user=dict(name="alice")), True),
    # literal kinds: match == str(literal)
    ("'public':%(visibility)s", dict(visibility="public"), {}, True),
    ("'public':%(visibility)s", dict(visibility="private"), {}, False),
    ("'public':%(visibility)s", {}, {}, False),
    ("True:%(enabled)s", dict(enabled=True), {}, True),
    ("True:%(enabled)s", dict(enabled=False), {}, False),
    ("1:%(num)s", dict(num="1"), {}, True),
    ("None:%(owner)s", dict(owner=None), {}, True),
    ("'a':a", {}, {}, True),
    ("'a':b", {}, {}, False),
    ("True:true", {}, {}, False),
    ("'public':%(visibility)s", dict(visibility="Public"), {}, False),
    ("1a:x", {}, dict({"1a": "x"}), False),                         # no literal, no path: oslo raises
    (":x", {"": "x"}, {}, False),
])
def test_check_semantics(rule, target, creds, expected):
    assert decide(rule, target, creds) is expected


def test_rule_references_and_the_default_rule():
    rules = {"admin": "role:admin", "owner": "project_id:%(owner)s",
             "admin_or_owner": "rule:admin or rule:owner", "default": "role:reader",
             "via_undefined": "rule:nope"}
    policy = Policy(rules)
    assert policy.enforce("admin_or_owner", IMAGE, MEMBER) is True
    assert policy.enforce("admin_or_owner", IMAGE, OTHER) is False
    assert policy.enforce("admin_or_owner", IMAGE, ADMIN) is True
    assert policy.enforce("via_undefined", IMAGE, OTHER) is True      # undefined -> default
    assert policy.enforce("via_undefined", IMAGE, MEMBER) is False
    assert policy.enforce("not_a_policy", IMAGE, OTHER) is True       # absent name -> default
    assert policy.enforce("not_a_policy", IMAGE, MEMBER) is False


def test_without_a_default_rule_undefined_names_deny():
    policy = Policy({"it": "rule:nope or role:member", "open": ""})
    assert policy.enforce("it", {}, MEMBER) is True
    assert policy.enforce("it", {}, NOBODY) is False
    assert policy.enforce("not_a_policy", {}, ADMIN) is False


def test_the_default_rule_name_can_be_changed():
    policy = Policy({"fallback": "role:admin", "it": "rule:nope"}, default_rule="fallback")
    assert policy.enforce("it", {}, ADMIN) is True
    assert policy.enforce("absent", {}, MEMBER) is False
    assert policy.enforce("absent", {}, ADMIN) is True


def test_no_rules_deny_everything():
    policy = Policy({})
    assert policy.enforce("default", {}, ADMIN) is False
    assert policy.names == frozenset()


def test_undefined_references_are_reported():
    policy = Policy({"it": "rule:nope", "other": "rule:gone", "default": ""}, source="p.json")
    assert policy.problems == [
        "p.json: policy 'it': rule:nope is not defined; it uses rule 'default' instead",
        "p.json: policy 'other': rule:gone is not defined; it uses rule 'default' instead"]


def test_check_evaluates_a_check_string_against_the_rules():
    policy = Policy({"admins": "role:admin", "default": "role:reader"})
    assert policy.check("rule:admins", {}, ADMIN) is True
    assert policy.check("rule:admins", {}, MEMBER) is False
    assert policy.check("rule:undefined", {}, OTHER) is True        # falls back to default
    assert policy.check("project_id:%(project_id)s", {}, MEMBER) is False  # empty target: KeyError
    assert policy.check([["role:member"], ["rule:admins"]], {}, ADMIN) is True
    assert policy.check("", {}, NOBODY) is True
    with pytest.raises(PolicyError, match="not supported"):
        policy.check("http://x", {}, ADMIN)
    with pytest.raises(PolicyError, match="not a rule"):
        policy.check(None, {}, ADMIN)


def test_cycles_are_refused_at_load():
    with pytest.raises(PolicyError, match=r"p\.json: policies form a cycle: a -> b -> a"):
        Policy({"a": "role:x or rule:b", "b": "not rule:a"}, source="p.json")
    with pytest.raises(PolicyError, match=r"cycle: me -> me"):
        Policy({"me": "@ or rule:me"})
    with pytest.raises(PolicyError, match=r"cycle: default -> a -> default \(for undefined rule:nope\)"):
        Policy({"default": "rule:a", "a": "rule:nope"})
    with pytest.raises(PolicyError, match=r"cycle: x -> default -> x"):
        Policy({"x": [["rule:default"]], "default": "rule:x"})


def test_policy_error_is_a_config_error():
    assert issubclass(PolicyError, ConfigError)


# -- B.3 loading ----------------------------------------------------------------------------

def write(tmp_path, text, name="policy.json"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SEED_EXPECTED = {  # policy: (admin, member, nobody)
    "add_image": (True, True, True),
    "get_image": (True, True, True),
    "modify_image": (True, True, True),
    "publicize_image": (True, False, False),
    "manage_image_cache": (True, False, False),
    "context_is_admin": (True, False, False),
    "get_metadef_namespace": (True, True, True),
    "tasks_api_access": (True, True, True),   # absent: the seed's default is ""
}


def test_seed_policy_file_loads_cleanly():
    policy = load_policy_file(str(SEED))
    assert policy.problems == []
    assert len(policy.names) == 47 and "default" in policy.names
    for name, expected in SEED_EXPECTED.items():
        got = tuple(policy.enforce(name, IMAGE, creds) for creds in (ADMIN, MEMBER, NOBODY))
        assert got == expected, name
    assert policy.enforce("publicize_image", {}, dict(roles=["Admin"])) is True
    assert Policy.load(str(SEED)).names == policy.names


def test_seed_checks_are_fast():
    policy = load_policy_file(str(SEED))
    calls = 20000
    for name in ("get_image", "publicize_image", "context_is_admin", "absent"):
        best = min(_timed(policy, name, calls) for _ in range(3))
        assert best / calls < 5e-6, (name, best / calls)


def _timed(policy, name, calls):
    enforce, target, creds = policy.enforce, IMAGE, MEMBER
    start = time.perf_counter()
    for _ in range(calls):
        enforce(name, target, creds)
    return time.perf_counter() - start


def test_yaml_policy_file(tmp_path):
    path = write(tmp_path, "# comment\nadmin_only: 'role:admin'\nlegacy:\n  - [role:member]\n"
                           "default: ''\n", "policy.yaml")
    policy = load_policy_file(path)
    assert policy.enforce("admin_only", {}, MEMBER) is False
    assert policy.enforce("legacy", {}, MEMBER) is True
    assert policy.enforce("absent", {}, NOBODY) is True


def test_json_with_comments_is_read_as_yaml_like_oslo(tmp_path):
    path = write(tmp_path, '{\n  # operators do this since oslo reads JSON as YAML\n  "a": "role:admin"\n}\n')
    assert load_policy_file(path).enforce("a", {}, ADMIN) is True


def test_what_oslo_reads_as_yaml_is_accepted(tmp_path):
    assert load_policy_file(write(tmp_path, '{"a": "@", "b": [["@"],],}')).enforce("b", {}, NOBODY) is True


def test_an_empty_mapping_loads_and_denies(tmp_path):
    assert load_policy_file(write(tmp_path, "{}")).enforce("x", {}, ADMIN) is False


@pytest.mark.parametrize("name, text, message", [
    ("policy.json", '{"a": "role:x" "b": ""}', r"policy\.json: malformed policy file: "),
    ("policy.json", '{"a": "role:x"', r"policy\.json: malformed policy file: "),
    ("policy.yaml", "a: [unclosed\n", r"policy\.yaml: malformed policy file: "),
    ("policy.json", "", r"policy\.json: policy file is empty"),
    ("policy.yaml", "  \n# only a comment\n", r"policy\.yaml: policy file is empty"),
    ("policy.json", '["role:admin"]', r"policy\.json: a policy file must map policy names .* not be a list"),
    ("policy.yaml", "just a string\n", r"policy\.yaml: a policy file must map .* not be a str"),
    ("policy.json", '{"a": "", "a": "role:admin"}', r"policy\.json: policy 'a' is defined more than once"),
    ("policy.yaml", "a: ''\nb: ''\na: role:admin\n", r"policy\.yaml: policy 'a' is defined more than once"),
    ("policy.json", '{"a": null}', r"policy\.json: policy 'a': a rule must be a string or a legacy list"),
    ("policy.json", '{"a": 1}', r"policy\.json: policy 'a': a rule must be"),
    ("policy.json", '{"a": true}', r"policy\.json: policy 'a': a rule must be"),
    ("policy.json", '{"a": {"b": "c"}}', r"policy\.json: policy 'a': a rule must be"),
    ("policy.json", '{"a": [[["role:x"]]]}', r"policy\.json: policy 'a': a rule must be"),
    ("policy.json", '{"a": [1]}', r"policy\.json: policy 'a': a rule must be"),
    ("policy.yaml", "1: role:admin\n", r"policy\.yaml: policy names must be strings, not 1"),
    ("policy.json", '{"a": "rule:b", "b": "rule:a"}', r"policy\.json: policies form a cycle: a -> b -> a"),
    ("policy.json", '{"a": "role:admin or http://pdp/x"}', r"policy\.json: policy 'a': .*not supported"),
])
def test_malformed_files_are_refused_naming_the_file(tmp_path, name, text, message):
    with pytest.raises(PolicyError, match=message):
        load_policy_file(write(tmp_path, text, name))


def test_missing_file_is_refused(tmp_path):
    path = str(tmp_path / "nowhere" / "policy.json")
    with pytest.raises(PolicyError, match=f"{path}: policy file not found"):
        load_policy_file(path)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy_file(str(tmp_path))


def test_unparsable_rule_in_a_file_is_logged_with_file_and_rule(tmp_path, caplog):
    path = write(tmp_path, json.dumps({"good": "", "bad": "role:admin or (role:member"}))
    with caplog.at_level(logging.ERROR, logger="glancelite.policy"):
        policy = load_policy_file(path)
    assert f"{path}: policy 'bad': cannot parse rule 'role:admin or (role:member'" in caplog.text
    assert policy.enforce("bad", {}, ADMIN) is False and policy.enforce("good", {}, NOBODY) is True


# -- differential test against oslo.policy -------------------------------------------------

ORDER = ["a", "b", "c", "context_is_admin", "default"]  # rule i may only refer to names after it
UNDEFINED = ["nope", "Default", "A"]
ROLES = ["admin", "Admin", "member", "MEMBER", "reader", "creator", "banned"]
CHECKS = [
    "@", "!", "is_admin:True", "is_admin:False", "is_admin:true", "project_id:%(owner)s",
    "project_id:%(project_id)s", "user_id:%(user_id)s", "'public':%(visibility)s", "True:%(enabled)s",
    "1:%(num)s", "None:%(owner)s", "roles:admin", "roles:Admin", "user.name:alice", "user.name:%(owner)s",
    "domain.id:d1", "project_id:p1", "project_id:None", "role:%(role)s", "role:%(missing)s",
    "project_id:%(missing)s", "'p1':p1", "True:True", "True:true", "'a':b", "HTTP:x",
]
ODD_CHECKS = [  # quoted strings make a rule unparsable; no ':' is a false atom;
    "admin", "'admin'", "\"x\"", "'",  # oslo.policy raises on the last three, glancelite says False
    "project_id:100%", "1a:x", ":x",
]
LIST_ONLY_CHECKS = ["role:admin or role:member", "(role:member)", "", "not @"]


class Oslo:
    """Real oslo.policy set up standalone (reference §C): a called ConfigOpts, a policy file,
    policy_dirs=[], load_rules() before use."""

    def __init__(self):
        from oslo_config import cfg

        self.conf = cfg.ConfigOpts()
        self.conf([], project="glancelite-test", default_config_files=[], default_config_dirs=[])
        self.directory = tempfile.TemporaryDirectory()
        self.counter = itertools.count()

    def enforcer(self, rules):
        from oslo_policy import policy as oslo_policy

        path = Path(self.directory.name) / f"policy-{next(self.counter)}.json"
        path.write_text(json.dumps(rules))
        enforcer = oslo_policy.Enforcer(self.conf, policy_file=str(path))
        self.conf.set_override("policy_dirs", [], group="oslo_policy")
        enforcer.load_rules()
        return enforcer


def oslo_decision(enforcer, rule, target, creds):
    """oslo.policy's decision, or None where it raises (glancelite then denies that check)."""
    try:
        return bool(enforcer.enforce(rule, dict(target), dict(creds)))
    except Exception:  # stray %, a creds path through a str, a kind that is no literal
        return None


@pytest.fixture(scope="module")
def oslo():
    if hypothesis is None:
        pytest.skip("the differential test needs the test extra: pip install -e '.[test]'")
    logging.getLogger("oslo_policy").setLevel(logging.CRITICAL)  # it logs every unparsable rule
    harness = Oslo()
    yield harness
    harness.directory.cleanup()


def test_the_oslo_harness_really_enforces(oslo):
    theirs = oslo.enforcer({"a": "role:admin", "b": "project_id:100%", "default": "!"})
    assert oslo_decision(theirs, "a", {}, ADMIN) is True
    assert oslo_decision(theirs, "a", {}, MEMBER) is False
    assert oslo_decision(theirs, "zzz", {}, ADMIN) is False
    assert oslo_decision(theirs, "b", {}, ADMIN) is None


if hypothesis is not None:
    def _atoms(refs):
        common = st.one_of(st.sampled_from(CHECKS), st.sampled_from(ROLES).map("role:".__add__),
                           st.sampled_from(refs + UNDEFINED).map("rule:".__add__))
        return st.one_of(common, common, common, common, common, st.sampled_from(ODD_CHECKS))

    def _spelled(word):
        return st.sampled_from([word, word.upper(), word.capitalize(), word[:-1] + word[-1].upper()])

    def _expressions(refs):
        space = st.sampled_from([" ", "  ", "\t", "\n "])
        return st.recursive(_atoms(refs), lambda inner: st.one_of(
            st.tuples(inner, space, _spelled("and"), space, inner).map("".join),
            st.tuples(inner, space, _spelled("or"), space, inner).map("".join),
            st.tuples(_spelled("not"), space, inner).map("".join),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"( {e} )"),
        ), max_leaves=8)

    def _malformed(expression):
        return st.one_of(expression.map(lambda e: e + " or"), expression.map(lambda e: "(" + e),
                         expression.map(lambda e: e + ")"), expression.map(lambda e: "and " + e),
                         st.tuples(expression, expression).map(" ".join))

    def _rules_for(refs):
        """Strategies for one rule, repeated to weigh them: mostly well-formed expressions."""
        expression = _expressions(refs)
        list_atom = st.one_of(_atoms(refs), st.sampled_from(LIST_ONLY_CHECKS))
        legacy = st.lists(st.one_of(list_atom, st.lists(list_atom, max_size=3)), max_size=3)
        return [st.just(""), legacy, legacy] + [expression] * 6 + [_malformed(expression)]

    RULES_FOR = {name: _rules_for(ORDER[i + 1:]) for i, name in enumerate(ORDER[:-1])}
    RULES_FOR["default"] = [st.sampled_from(["", "@", "!", "role:admin", "not role:Member"])]

    @st.composite
    def rule_sets(draw):
        """No cycles (refused at load, and they crash oslo.policy): a rule refers only to names
        after it, and the default rule, which undefined names fall back to, to nothing."""
        rules = {}
        for name in ORDER:
            if draw(st.booleans()):
                choices = RULES_FOR[name]
                rules[name] = draw(choices[draw(st.integers(0, len(choices) - 1))])
        return rules

    CREDS = st.fixed_dictionaries({}, optional={
        "roles": st.lists(st.sampled_from(ROLES), max_size=3),
        "project_id": st.sampled_from(["p1", "p2", None]),
        "user_id": st.sampled_from(["u1", None]),
        "is_admin": st.booleans(),
        "user": st.one_of(st.fixed_dictionaries({"name": st.sampled_from(["alice", "bob"])}),
                          st.just("alice")),
        "domain": st.one_of(st.fixed_dictionaries({"id": st.sampled_from(["d1", "d2"])}),
                            st.lists(st.fixed_dictionaries({"id": st.sampled_from(["d1", "d2"])}),
                                     max_size=2)),
    })
    TARGETS = st.fixed_dictionaries({}, optional={
        "owner": st.sampled_from(["p1", "p2", "alice", None]),
        "project_id": st.sampled_from(["p1", "p2"]),
        "user_id": st.sampled_from(["u1", "u2"]),
        "visibility": st.sampled_from(["public", "private", "Public"]),
        "enabled": st.sampled_from([True, False, "True"]),
        "num": st.sampled_from([1, "1", 2]),
        "role": st.sampled_from(["admin", "Member", "reader"]),
    })

    @hypothesis.settings(max_examples=300, deadline=None,
                         suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture,
                                                hypothesis.HealthCheck.too_slow])
    @hypothesis.given(rules=rule_sets(), extra=_expressions(ORDER),
                      requests=st.lists(st.tuples(TARGETS, CREDS), min_size=1, max_size=6))
    def test_decisions_agree_with_oslo_policy(oslo, rules, extra, requests):
        from oslo_policy import _parser

        ours, theirs = Policy(rules), oslo.enforcer(rules)
        extra_check = _parser.parse_rule(extra)  # .check() against enforce() of a parsed rule
        for target, creds in requests:
            for name in ORDER + UNDEFINED:
                got, expected = ours.enforce(name, target, creds), oslo_decision(theirs, name, target, creds)
                assert type(got) is bool and expected in (got, None), (rules, name, target, creds)
            got = ours.check(extra, target, creds)
            expected = oslo_decision(theirs, extra_check, target, creds)
            assert type(got) is bool and expected in (got, None), (rules, extra, target, creds)
else:  # pragma: no cover
    def test_decisions_agree_with_oslo_policy():
        pytest.skip("the differential test needs the test extra: pip install -e '.[test]'")
