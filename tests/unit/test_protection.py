"""Property protection (glancelite/protection.py): loading rules and decisions, table-driven.

Every case follows the loading rules and the decision rules measured on Glance
(../shared/reference/policy-and-protection.md, A.1 and A.2).
"""
import json
import logging
from pathlib import Path

import pytest

from glancelite.config import ConfigError
from glancelite.policy import Policy
from glancelite.protection import OPERATIONS, PropertyProtection, ProtectionError, from_config

REPO = Path(__file__).resolve().parents[2]
ALL_OPS = "create = {v}\nread = {v}\nupdate = {v}\ndelete = {v}\n"

ADMIN = dict(roles=["admin"], project_id="p1", user_id="u1", is_admin=True)
MEMBER = dict(roles=["member"], project_id="p1", user_id="u2", is_admin=False)
READER = dict(roles=["reader"], project_id="p2", user_id="u3", is_admin=False)
NOBODY = dict(roles=[], project_id="p3", user_id="u4", is_admin=False)


class RecordingPolicy:
    """Wraps a Policy and records each check, to assert the target and creds Glance uses."""

    def __init__(self, policy):
        self.policy, self.calls, self.names = policy, [], getattr(policy, "names", ())

    def check(self, rule, target, creds):
        self.calls.append((rule, target, dict(creds)))
        return self.policy.check(rule, target, creds)


def make_policy(rules):
    return RecordingPolicy(Policy(rules))


def write(tmp_path, text, name="protections.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load(tmp_path, text, rule_format="roles", policy=None):
    return PropertyProtection(write(tmp_path, text), rule_format, policy)


def decide(prot, name, op, creds):
    return prot.allowed(name, op, creds["roles"], creds)


# --------------------------------------------------------------------------------------------
# A.1 loading: every invalid file is refused with a message naming file, section and problem
# --------------------------------------------------------------------------------------------

LOAD_ERRORS = [
    ("bad regex", "[x_(]\n" + ALL_OPS.format(v="admin"), "roles",
     ["[x_(]", "not a valid regular expression"]),
    ("missing op", "[x_a]\ncreate = admin\nread = admin\nupdate = admin\n", "roles",
     ["[x_a]", "'delete'"]),
    ("misspelt op", "[x_a]\ncreate = admin\nraed = admin\nupdate = admin\ndelete = admin\n", "roles",
     ["[x_a]", "'read'", "raed"]),
    ("missing op in a later section", ALL_OPS.format(v="@").join(["[a]\n", "[b]\ncreate = @\n"]), "roles",
     ["[b]", "'read'"]),
    ("@ with !", "[x_a]\ncreate = admin, @, !\nread = @\nupdate = @\ndelete = @\n", "roles",
     ["[x_a]", "create", "'@' and '!'"]),
    ("@ with ! in read", "[x_a]\ncreate = @\nread = !,@\nupdate = @\ndelete = @\n", "roles",
     ["[x_a]", "read", "'@' and '!'"]),
    ("two policies", "[x_a]\ncreate = context_is_admin, default\nread = @\nupdate = @\ndelete = @\n",
     "policies", ["[x_a]", "create", "only one policy"]),
    ("@,! in policies", "[x_a]\ncreate = @\nread = @,!\nupdate = @\ndelete = @\n", "policies",
     ["[x_a]", "read", "only one policy"]),
    ("duplicate section", "[x_a]\n" + ALL_OPS.format(v="@") + "[x_a]\n" + ALL_OPS.format(v="@"), "roles",
     ["x_a", "already exists"]),
    ("duplicate key", "[x_a]\ncreate = @\ncreate = admin\n" + "read = @\nupdate = @\ndelete = @\n", "roles",
     ["x_a", "create", "already exists"]),
    ("duplicate key, other case", "[x_a]\ncreate = @\nCREATE = admin\nread = @\nupdate = @\ndelete = @\n",
     "roles", ["x_a", "create", "already exists"]),
    ("no section header", "create = @\n[x_a]\n" + ALL_OPS.format(v="@"), "roles",
     ["malformed", "no section header"]),
    ("bad % interpolation", "[x_a]\ncreate = 100%\nread = @\nupdate = @\ndelete = @\n", "roles",
     ["[x_a]", "create", "interpolation"]),
    ("unknown format", "[x_a]\n" + ALL_OPS.format(v="@"), "rolez", ["'rolez'", "roles", "policies"]),
]


@pytest.mark.parametrize("text, rule_format, expected",
                         [case[1:] for case in LOAD_ERRORS], ids=[case[0] for case in LOAD_ERRORS])
def test_invalid_files_are_refused(tmp_path, text, rule_format, expected):
    policy = object() if rule_format == "policies" else None
    with pytest.raises(ProtectionError) as raised:
        load(tmp_path, text, rule_format, policy)
    message = str(raised.value)
    assert str(tmp_path / "protections.conf") in message
    for part in expected:
        assert part in message, (part, message)


def test_missing_file_is_refused(tmp_path):
    path = str(tmp_path / "nowhere.conf")
    with pytest.raises(ProtectionError, match="nowhere.conf: cannot read it"):
        PropertyProtection(path)


def test_protection_error_is_a_config_error():
    # so the server's start-up path that reports ConfigError refuses to start with it
    assert issubclass(ProtectionError, ConfigError)


def test_policies_format_needs_a_policy(tmp_path):
    with pytest.raises(ProtectionError, match="needs a policy file"):
        load(tmp_path, "[x_a]\n" + ALL_OPS.format(v="@"), "policies", None)


def test_format_is_case_insensitive(tmp_path):
    prot = load(tmp_path, "[x_a]\n" + ALL_OPS.format(v="admin"), " Roles ")
    assert prot.rule_format == "roles"
    assert decide(prot, "x_a", "read", ADMIN)


def test_empty_value_loads_with_a_warning_and_denies_everybody(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="glancelite.protection"):
        prot = load(tmp_path, "[x_a]\ncreate = @\nread = @\nupdate = @\ndelete =\n")
    assert any("[x_a] delete is empty" in r.getMessage() for r in caplog.records)
    for creds in (ADMIN, MEMBER, NOBODY):
        assert not decide(prot, "x_a", "delete", creds)
        assert decide(prot, "x_a", "update", creds)


def test_empty_value_in_policies_format_denies_without_asking_the_policy(tmp_path):
    policy = RecordingPolicy(AlwaysTrue())
    prot = load(tmp_path, "[x_a]\ncreate =\nread = @\nupdate = !\ndelete = default\n", "policies", policy)
    assert not decide(prot, "x_a", "create", ADMIN)
    assert decide(prot, "x_a", "read", NOBODY)
    assert not decide(prot, "x_a", "update", ADMIN)
    assert policy.calls == []
    assert decide(prot, "x_a", "delete", NOBODY)
    assert [call[0] for call in policy.calls] == ["rule:default"]


class AlwaysTrue:
    def check(self, rule, target, creds):
        return True


CONFIGPARSER_SEMANTICS = [
    # (id, file text, (property, op, creds, expected) ...)
    ("colon delimiter", "[x_a]\ncreate: admin\nread : @\nupdate=admin\ndelete = admin\n",
     [("x_a", "create", ADMIN, True), ("x_a", "read", NOBODY, True), ("x_a", "create", MEMBER, False)]),
    ("upper-case op names", "[x_a]\nCREATE = admin\nRead = @\nUPDATE = admin\nDelete = admin\n",
     [("x_a", "create", ADMIN, True), ("x_a", "read", NOBODY, True), ("x_a", "delete", MEMBER, False)]),
    ("values stripped, roles split on commas", "[x_a]\n" + ALL_OPS.format(v="  admin ,   member  "),
     [("x_a", "read", MEMBER, True), ("x_a", "read", ADMIN, True), ("x_a", "read", READER, False)]),
    ("no inline comments: '# ...' is part of the value", "[x_a]\n" + ALL_OPS.format(v="admin # only admins"),
     [("x_a", "read", ADMIN, False)]),
    ("full-line comments", "# hello\n; there\n[x_a]\n# c\n" + ALL_OPS.format(v="member"),
     [("x_a", "read", MEMBER, True)]),
    ("[DEFAULT] is inherited by every section",
     "[DEFAULT]\nread = @\ndelete = !\n[x_a]\ncreate = admin\nupdate = admin\n"
     "[x_b]\n" + ALL_OPS.format(v="admin"),
     [("x_a", "read", NOBODY, True), ("x_a", "delete", ADMIN, False), ("x_a", "create", ADMIN, True),
      ("x_b", "read", NOBODY, False), ("x_b", "read", ADMIN, True), ("DEFAULT", "read", NOBODY, False)]),
    ("section names are case-sensitive regexes", "[X_A]\n" + ALL_OPS.format(v="@"),
     [("X_A", "read", NOBODY, True), ("x_a", "read", ADMIN, False)]),
    ("extra options are ignored", "[x_a]\nlist = !\n" + ALL_OPS.format(v="@"),
     [("x_a", "read", NOBODY, True), ("x_a", "list", ADMIN, False)]),
    ("% interpolation as configparser does",
     "[DEFAULT]\nadmins = admin\n[x_a]\n" + ALL_OPS.format(v="%(admins)s"),
     [("x_a", "read", ADMIN, True), ("x_a", "read", MEMBER, False)]),
]


@pytest.mark.parametrize("text, cases", [c[1:] for c in CONFIGPARSER_SEMANTICS],
                         ids=[c[0] for c in CONFIGPARSER_SEMANTICS])
def test_configparser_semantics(tmp_path, text, cases):
    prot = load(tmp_path, text)
    for name, op, creds, expected in cases:
        assert decide(prot, name, op, creds) is expected, (name, op, creds["roles"])


def test_os_glance_sections_are_ignored_with_a_warning(tmp_path, caplog):
    text = ("[os_glance(]\ncreate = @\n[os_glance_x]\n" + ALL_OPS.format(v="!")
            + "[x_a]\n" + ALL_OPS.format(v="@"))
    with caplog.at_level(logging.WARNING, logger="glancelite.protection"):
        prot = load(tmp_path, text)
    assert [name for name, _, _ in prot.rules] == ["x_a"]
    assert sum("reserved" in r.getMessage() for r in caplog.records) == 2


def test_os_glance_properties_are_allowed_but_not_names_containing_it(tmp_path):
    prot = load(tmp_path, "[os_glance]\n" + ALL_OPS.format(v="!") + "[^x_]\n" + ALL_OPS.format(v="admin"))
    for op in OPERATIONS:
        assert decide(prot, "os_glance_importing_to_stores", op, NOBODY)
    # Glance's injected [os_glance.*] would allow this one to everybody; we follow the sections
    assert not decide(prot, "x_owner_os_glance_tag", "read", MEMBER)
    assert decide(prot, "x_owner_os_glance_tag", "read", ADMIN)
    assert not decide(prot, "os_glance_x", "list", ADMIN)


# --------------------------------------------------------------------------------------------
# A.2 decisions
# --------------------------------------------------------------------------------------------

ROLES_FILE = """
[cpu]
create = admin
read = @
update = admin
delete = admin

[x_none_read]
create = admin
read = !
update = !
delete = !

[^x_owner_.*]
create = admin, member
read = Admin, MEMBER, reader
update = member, !
delete = admin, @

[_tail$]
create = @
read = @
update = @
delete = @

[x_foo_*]
create = reader
read = reader
update = reader
delete = reader

[x_empty]
create =
read = admin
update = admin
delete = admin

[.*]
create = admin
read = admin
update = admin
delete = admin

[never_reached]
create = @
read = @
update = @
delete = @
"""

ROLES_DECISIONS = [
    # search, not match: [cpu] covers hw_cpu_cores
    ("hw_cpu_cores", "read", NOBODY, True),
    ("hw_cpu_cores", "create", MEMBER, False),
    ("hw_cpu_cores", "create", ADMIN, True),
    # case-sensitive regex: CPU_COUNT falls to the catch-all
    ("CPU_COUNT", "read", NOBODY, False),
    ("CPU_COUNT", "read", ADMIN, True),
    # [x_none_read] is searched: suffix and prefix both match; '!' denies admin too
    ("x_none_read", "read", ADMIN, False),
    ("x_none_read_suffix", "update", ADMIN, False),
    ("pre_x_none_read", "delete", ADMIN, False),
    ("x_none_read", "create", ADMIN, True),
    # anchors are honoured
    ("x_owner_tag", "create", MEMBER, True),
    ("a_x_owner_tag", "create", MEMBER, False),
    ("a_x_owner_tag", "create", ADMIN, True),
    # roles case-insensitive on both sides
    ("x_owner_tag", "read", dict(MEMBER, roles=["Member"]), True),
    ("x_owner_tag", "read", ADMIN, True),
    ("x_owner_tag", "read", dict(ADMIN, roles=["ADMIN"]), True),
    ("x_owner_tag", "read", READER, True),
    ("x_owner_tag", "read", NOBODY, False),
    ("x_owner_tag", "read", dict(NOBODY, roles=["other", "reader"]), True),
    # '!' beats a listed role
    ("x_owner_tag", "update", MEMBER, False),
    ("x_owner_tag", "update", ADMIN, False),
    # '@' with roles allows everybody, even without roles
    ("x_owner_tag", "delete", NOBODY, True),
    ("x_owner_tag", "delete", READER, True),
    # first match wins: [^x_owner_.*] before [_tail$]
    ("x_owner_tail", "update", MEMBER, False),
    ("some_tail", "update", NOBODY, True),
    ("some_tail_not", "update", NOBODY, False),
    # [x_foo_*] is the regex x_foo followed by any number of '_'
    ("x_foo", "read", READER, True),
    ("my_x_food", "read", READER, True),
    ("x_fo", "read", READER, False),
    # empty value denies everybody
    ("x_empty", "create", ADMIN, False),
    ("x_empty", "create", NOBODY, False),
    ("x_empty", "read", ADMIN, True),
    # the catch-all shadows the later section
    ("never_reached", "read", NOBODY, False),
    ("never_reached", "read", ADMIN, True),
    # unknown operation
    ("hw_cpu_cores", "list", ADMIN, False),
    ("hw_cpu_cores", "READ", ADMIN, False),
]


def case_id(case):
    return f"{case[0]}-{case[1]}-{'+'.join(case[2]['roles']) or 'noroles'}"


@pytest.mark.parametrize("name, op, creds, expected", ROLES_DECISIONS, ids=map(case_id, ROLES_DECISIONS))
def test_roles_decisions(tmp_path, name, op, creds, expected):
    prot = load(tmp_path, ROLES_FILE)
    assert decide(prot, name, op, creds) is expected


def test_no_matching_section_denies_everybody(tmp_path):
    prot = load(tmp_path, "[^x_]\n" + ALL_OPS.format(v="@"))
    for op in OPERATIONS:
        assert decide(prot, "x_a", op, NOBODY)
        for creds in (ADMIN, MEMBER, NOBODY):
            assert not decide(prot, "y_a", op, creds)


def test_first_match_wins_over_a_later_more_specific_section(tmp_path):
    prot = load(tmp_path, "[.*]\n" + ALL_OPS.format(v="!") + "[x_a]\n" + ALL_OPS.format(v="@"))
    assert not decide(prot, "x_a", "read", ADMIN)


def test_a_file_without_sections_denies_everything(tmp_path):
    prot = load(tmp_path, "# nothing\n")
    assert not decide(prot, "x_a", "read", ADMIN)


def test_roles_none_and_role_order(tmp_path):
    prot = load(tmp_path, "[x]\n" + ALL_OPS.format(v="b, a"))
    assert not prot.allowed("x", "read", None, {})
    assert prot.allowed("x", "read", ("z", "A"), {})


def test_readable_and_denied(tmp_path):
    prot = load(tmp_path, ROLES_FILE)
    props = {"hw_cpu_cores": "2", "x_none_read": "s", "x_owner_tag": "t", "other": "o"}
    assert prot.readable(props, MEMBER["roles"], MEMBER) == {"hw_cpu_cores": "2", "x_owner_tag": "t"}
    visible_to_admin = {k: v for k, v in props.items() if k != "x_none_read"}
    assert prot.readable(props, ADMIN["roles"], ADMIN) == visible_to_admin
    assert prot.readable({}, [], {}) == {}
    assert prot.denied(["x_owner_a", "other", "x_none_read"], "create", MEMBER["roles"], MEMBER) == "other"
    assert prot.denied(["x_owner_a", "hw_cpu_cores"], "read", MEMBER["roles"], MEMBER) is None


# --------------------------------------------------------------------------------------------
# policies format: rule:<value> with an EMPTY target; creds without is_admin; default fallback
# --------------------------------------------------------------------------------------------

POLICY_RULES = {
    "context_is_admin": "role:admin",
    "default": "role:admin",
    "members": "role:member or rule:context_is_admin",
    "owner": "project_id:%(project_id)s",
    "public": "'public':%(visibility)s",
    "is_admin_flag": "is_admin:True",
    "project_literal": "project_id:p1",
    "anyone": "",
}

POLICIES_FILE = """
[^x_members_]
create = members
read = anyone
update = members
delete = context_is_admin

[^x_owner_]
create = owner
read = public
update = is_admin_flag
delete = project_literal

[^x_typo_]
create = no_such_rule
read = @
update = !
delete = members

[.*]
create = context_is_admin
read = context_is_admin
update = context_is_admin
delete = context_is_admin
"""

POLICY_DECISIONS = [
    ("x_members_a", "create", MEMBER, True),
    ("x_members_a", "create", ADMIN, True),
    ("x_members_a", "create", READER, False),
    ("x_members_a", "read", NOBODY, True),
    ("x_members_a", "delete", MEMBER, False),
    ("x_members_a", "delete", ADMIN, True),
    # empty target: %(...)s checks are False even for the project's own admin/member
    ("x_owner_a", "create", MEMBER, False),
    ("x_owner_a", "create", ADMIN, False),
    ("x_owner_a", "read", ADMIN, False),
    # creds carry no is_admin (oslo.context's policy values), so is_admin:True is always False
    ("x_owner_a", "update", ADMIN, False),
    # generic checks against creds do work
    ("x_owner_a", "delete", MEMBER, True),
    ("x_owner_a", "delete", READER, False),
    # undefined rule -> the default rule (role:admin here)
    ("x_typo_a", "create", ADMIN, True),
    ("x_typo_a", "create", MEMBER, False),
    ("x_typo_a", "read", NOBODY, True),
    ("x_typo_a", "update", ADMIN, False),
    ("x_other", "read", ADMIN, True),
    ("x_other", "read", MEMBER, False),
]


@pytest.mark.parametrize("name, op, creds, expected", POLICY_DECISIONS,
                         ids=map(case_id, POLICY_DECISIONS))
def test_policies_decisions(tmp_path, name, op, creds, expected):
    prot = load(tmp_path, POLICIES_FILE, "policies", make_policy(POLICY_RULES))
    assert decide(prot, name, op, creds) is expected


def test_policies_are_checked_as_rule_with_an_empty_target_and_no_is_admin(tmp_path):
    policy = make_policy(POLICY_RULES)
    prot = load(tmp_path, POLICIES_FILE, "policies", policy)
    assert decide(prot, "x_members_a", "update", MEMBER)
    assert decide(prot, "x_typo_a", "read", MEMBER)  # '@' never reaches the policy
    assert not decide(prot, "x_typo_a", "update", MEMBER)  # neither does '!'
    assert policy.calls == [("rule:members", {}, {"roles": ["member"], "project_id": "p1", "user_id": "u2"})]


def test_undefined_policy_is_warned_about_at_load(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="glancelite.protection"):
        load(tmp_path, POLICIES_FILE, "policies", make_policy(POLICY_RULES))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "[^x_typo_] create: policy 'no_such_rule' is not defined" in warnings[0]


def test_undefined_policy_falls_back_to_an_empty_default(tmp_path):
    policy = make_policy(dict(POLICY_RULES, default=""))
    prot = load(tmp_path, POLICIES_FILE, "policies", policy)
    assert decide(prot, "x_typo_a", "create", NOBODY)


# --------------------------------------------------------------------------------------------
# from_config
# --------------------------------------------------------------------------------------------

def test_from_config(tmp_path):
    assert from_config({"DEFAULT": {}}) is None
    assert from_config({"DEFAULT": {"property_protection_file": ""}}) is None
    path = write(tmp_path, "[x]\n" + ALL_OPS.format(v="@"))
    prot = from_config({"DEFAULT": {"property_protection_file": path}})
    assert prot.rule_format == "roles" and decide(prot, "x", "read", NOBODY)
    conf = {"DEFAULT": {"property_protection_file": path, "property_protection_rule_format": "policies"}}
    assert from_config(conf, AlwaysTrue()).rule_format == "policies"
    with pytest.raises(ProtectionError, match="needs a policy file"):
        from_config(conf)


# --------------------------------------------------------------------------------------------
# the shipped samples load and do what their comments say
# --------------------------------------------------------------------------------------------

def test_roles_sample(caplog):
    with caplog.at_level(logging.WARNING, logger="glancelite.protection"):
        prot = PropertyProtection(str(REPO / "policies/property-protections-roles.conf"), "roles")
    assert caplog.records == []
    expect = {
        # property: {op: roles allowed among admin/member/reader/none}
        "x_none_read": {"create": "a", "read": "", "update": "", "delete": ""},
        "x_none_update": {"create": "a", "read": "am", "update": "", "delete": "a"},
        "x_none_delete": {"create": "a", "read": "am", "update": "am", "delete": ""},
        "x_owner_licence": {"create": "am", "read": "amr", "update": "am", "delete": "am"},
        "hw_disk_bus": {"create": "am", "read": "amrn", "update": "am", "delete": "am"},
        "img_config_drive": {"create": "am", "read": "amrn", "update": "am", "delete": "am"},
        "os_distro": {"create": "am", "read": "amrn", "update": "am", "delete": "am"},
        "billing_code": {"create": "a", "read": "a", "update": "a", "delete": "a"},
    }
    _check_sample(prot, expect)


def test_policies_sample(caplog):
    policy = RecordingPolicy(Policy.load(str(REPO / "policies/policy.json")))
    with caplog.at_level(logging.WARNING, logger="glancelite.protection"):
        prot = PropertyProtection(str(REPO / "policies/property-protections-policies.conf"), "policies",
                                  policy)
    assert caplog.records == []
    names = json.loads((REPO / "policies/policy.json").read_text())
    for _, _, perms in prot.rules:
        for values in perms.values():
            assert all(v in ("@", "!") or v in names for v in values), values
    expect = {
        "x_none_read": {"create": "a", "read": "", "update": "", "delete": ""},
        "x_none_update": {"create": "a", "read": "a", "update": "", "delete": "a"},
        "x_none_delete": {"create": "a", "read": "a", "update": "a", "delete": ""},
        "x_owner_licence": {"create": "amrn", "read": "amrn", "update": "amrn", "delete": "amrn"},
        "hw_disk_bus": {"create": "a", "read": "a", "update": "a", "delete": "a"},
    }
    _check_sample(prot, expect)


def _check_sample(prot, expect):
    callers = {"a": ADMIN, "m": MEMBER, "r": READER, "n": NOBODY}
    for name, ops in expect.items():
        for op, allowed in ops.items():
            for letter, creds in callers.items():
                assert decide(prot, name, op, creds) is (letter in allowed), (name, op, creds["roles"])
