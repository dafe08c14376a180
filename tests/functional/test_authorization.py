"""policy.json and property protection as an operator configures them, over HTTP."""
import json
import subprocess

import pytest

from tests.support.server import BIN, REPO, ApiClient, run_manage, running_server, write_config

ROLES_FILE = REPO / "policies" / "property-protections-roles.conf"
POLICIES_FILE = REPO / "policies" / "property-protections-policies.conf"


def server_with(request, database_url_factory, tmp_path_factory, overrides):
    directory = tmp_path_factory.mktemp("authz")
    return running_server(directory, database_url_factory(request.param), overrides)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def roles_server(request, database_url_factory, tmp_path_factory):
    overrides = {"DEFAULT": {"property_protection_file": str(ROLES_FILE)}}
    with server_with(request, database_url_factory, tmp_path_factory, overrides) as base:
        yield base


def clients(base):
    return {
        "admin": ApiClient(base, project="tenant", roles=("admin",)),
        "member": ApiClient(base, project="tenant", roles=("member",)),
        "reader": ApiClient(base, project="tenant", roles=("reader",)),
    }


def created_by_admin(base, **properties):
    return clients(base)["admin"].create_image(**properties)


# -- roles format: create --------------------------------------------------------------------

@pytest.mark.parametrize("who, key, code", [
    ("member", "x_owner_foo", 201),
    ("member", "hw_cpu_cores", 201),
    ("member", "x_none_read", 403),      # create = admin
    ("member", "anything_else", 403),    # the admin-only catch-all
    ("admin", "anything_else", 201),
    ("admin", "x_none_read", 201),
    ("reader", "x_owner_foo", 403),
])
def test_create_needs_create_permission_for_every_key(roles_server, who, key, code):
    client = clients(roles_server)[who]
    name = f"create-{who}-{key}"
    response = client.post("/v2/images", json={"name": name, key: "v"})
    assert response.status_code == code, response.text
    if code == 403:
        assert f"Attribute '{key}' is reserved." in response.json()["message"]
        assert client.get("/v2/images", params={"name": name}).json()["images"] == []


def test_core_attributes_are_never_protected(roles_server):
    member = clients(roles_server)["member"]
    image = member.create_image(name="core", min_ram=5, tags=["t"])
    changed = member.patch(f"/v2/images/{image['id']}", [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/min_disk", "value": 3}])
    assert changed.status_code == 200


# -- roles format: read ----------------------------------------------------------------------

def test_unreadable_keys_are_absent_everywhere(roles_server):
    admin, member = clients(roles_server)["admin"], clients(roles_server)["member"]
    created = admin.post("/v2/images", json={"name": "hidden-keys", "x_none_read": "secret",
                                              "x_none_update": "u", "os_distro": "cirros",
                                              "admin_only": "a"})
    assert created.status_code == 201
    image = created.json()
    assert "x_none_read" not in image, "not even the creator (admin) may read it"
    assert image["admin_only"] == "a"
    shown = member.get(f"/v2/images/{image['id']}").json()
    assert shown["os_distro"] == "cirros" and shown["x_none_update"] == "u"
    assert "admin_only" not in shown and "x_none_read" not in shown
    listed = member.get("/v2/images", params={"name": "hidden-keys"}).json()["images"]
    assert [set(i) & {"admin_only", "x_none_read"} for i in listed] == [set()]
    patched = member.patch(f"/v2/images/{image['id']}",
                           [{"op": "add", "path": "/os_version", "value": "1"}])
    assert patched.status_code == 200
    assert "admin_only" not in patched.json()


def test_a_members_patch_keeps_keys_it_cannot_read(roles_server):
    admin, member = clients(roles_server)["admin"], clients(roles_server)["member"]
    image = admin.create_image(name="keep", admin_only="kept", x_none_read="also kept")
    response = member.patch(f"/v2/images/{image['id']}",
                            [{"op": "replace", "path": "/name", "value": "still"}])
    assert response.status_code == 200
    after = admin.get(f"/v2/images/{image['id']}").json()
    assert after["admin_only"] == "kept"
    listed = admin.get("/v2/images", params={"x_none_read": "also kept", "name": "still"})
    assert [i["id"] for i in listed.json()["images"]] == [image["id"]], \
        "a creatable but unreadable key is stored (Glance drops it)"


# -- roles format: update / delete ------------------------------------------------------------

@pytest.mark.parametrize("who, op, key, code", [
    ("member", "replace", "x_owner_a", 200),
    ("member", "remove", "x_owner_a", 200),
    ("member", "replace", "x_none_update", 403),
    ("admin", "replace", "x_none_update", 403),
    ("member", "remove", "x_none_update", 403),
    ("admin", "remove", "x_none_update", 200),
    ("member", "replace", "x_none_delete", 200),
    ("admin", "remove", "x_none_delete", 403),
    ("member", "replace", "admin_only", 409),    # unreadable: it does not exist for them
    ("member", "remove", "admin_only", 409),
    ("admin", "replace", "x_none_read", 409),
    ("reader", "replace", "x_owner_a", 403),
])
def test_update_and_delete_permissions(roles_server, who, op, key, code):
    base = roles_server
    image = created_by_admin(base, x_owner_a="1", x_none_update="2", x_none_delete="3",
                             admin_only="4", x_none_read="5")
    change = {"op": op, "path": f"/{key}"}
    if op == "replace":
        change["value"] = "new"
    response = clients(base)[who].patch(f"/v2/images/{image['id']}", [change])
    assert response.status_code == code, response.text
    if code == 409:
        assert f"Property {key} does not exist." in response.json()["message"]


def test_add_of_an_unreadable_key_needs_create_and_never_500s(roles_server):
    admin, member = clients(roles_server)["admin"], clients(roles_server)["member"]
    image = admin.create_image(name="add-hidden")
    by_member = member.patch(f"/v2/images/{image['id']}",
                             [{"op": "add", "path": "/x_none_read", "value": "v"}])
    assert by_member.status_code == 403
    by_admin = admin.patch(f"/v2/images/{image['id']}",
                           [{"op": "add", "path": "/x_none_read", "value": "v"}])
    assert by_admin.status_code == 200 and "x_none_read" not in by_admin.json()


def test_one_denied_operation_saves_nothing(roles_server):
    admin, member = clients(roles_server)["admin"], clients(roles_server)["member"]
    image = admin.create_image(name="atomic", x_owner_a="1", x_none_update="2")
    response = member.patch(f"/v2/images/{image['id']}", [
        {"op": "replace", "path": "/x_owner_a", "value": "changed"},
        {"op": "replace", "path": "/x_none_update", "value": "changed"}])
    assert response.status_code == 403
    assert admin.get(f"/v2/images/{image['id']}").json()["x_owner_a"] == "1"


# -- policies format ---------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def policies_server(request, database_url_factory, tmp_path_factory):
    overrides = {"DEFAULT": {"property_protection_file": str(POLICIES_FILE),
                             "property_protection_rule_format": "policies"}}
    with server_with(request, database_url_factory, tmp_path_factory, overrides) as base:
        yield base


def test_policies_format(policies_server):
    admin, member = clients(policies_server)["admin"], clients(policies_server)["member"]
    assert member.post("/v2/images", json={"x_owner_k": "v"}).status_code == 201
    assert member.post("/v2/images", json={"x_none_update": "v"}).status_code == 403
    image = admin.create_image(x_none_update="v", other="o")
    shown = member.get(f"/v2/images/{image['id']}").json()
    assert "x_none_update" not in shown and "other" not in shown
    assert admin.get(f"/v2/images/{image['id']}").json()["other"] == "o"
    denied = admin.patch(f"/v2/images/{image['id']}",
                         [{"op": "replace", "path": "/x_none_update", "value": "w"}])
    assert denied.status_code == 403


# -- policy.json ---------------------------------------------------------------------------------

def seed_policy(**changes):
    rules = json.loads((REPO / "policies" / "policy.json").read_text())
    rules.update(changes)
    return rules


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def strict_server(request, database_url_factory, tmp_path_factory):
    policy = tmp_path_factory.mktemp("policy") / "policy.json"
    policy.write_text(json.dumps(seed_policy(
        context_is_admin="role:admin or role:cloud_admin",
        get_images="not role:nolist",
        get_image="not role:blind",
        delete_image="role:admin",
        download_image="not role:nodownload",
        modify_image="rule:context_is_admin or project_id:%(project_id)s and role:member",
        add_image="role:member or rule:context_is_admin",
        communitize_image="role:admin",
        publicize_image="rule:context_is_admin",
        add_member="role:admin",
    )))
    overrides = {"oslo_policy": {"policy_file": str(policy)}}
    with server_with(request, database_url_factory, tmp_path_factory, overrides) as base:
        yield base


def test_policy_rules_are_enforced(strict_server):
    owner = ApiClient(strict_server, project="p1", roles=("member",))
    image = owner.create_image(name="pol", disk_format="raw", container_format="bare")
    path = f"/v2/images/{image['id']}"
    assert owner.delete(path).status_code == 403
    assert ApiClient(strict_server, project="p1", roles=("nolist",)).get("/v2/images").status_code == 403
    blind = ApiClient(strict_server, project="p1", roles=("member", "blind"))
    assert blind.get(path).status_code == 404
    assert blind.get("/v2/images").json()["images"] == []
    assert blind.delete(path).status_code == 404, "denied and invisible: 404, not 403"
    reader = ApiClient(strict_server, project="p1", roles=("reader",))
    assert reader.patch(path, [{"op": "replace", "path": "/name", "value": "x"}]).status_code == 403
    assert reader.post("/v2/images", json={}).status_code == 403
    assert owner.post("/v2/images", json={"visibility": "community"}).status_code == 403
    shared = owner.create_image()
    members = owner.post(f"/v2/images/{shared['id']}/members", json={"member": "p2"})
    assert members.status_code == 403
    put = owner.put(f"{path}/file", data=b"x", headers={"Content-Type": "application/octet-stream"})
    assert put.status_code == 204
    nodownload = ApiClient(strict_server, project="p1", roles=("member", "nodownload"))
    assert nodownload.get(f"{path}/file").status_code == 403
    assert owner.get(f"{path}/file").content == b"x"


def test_context_is_admin_widens_who_is_admin(strict_server):
    cloud_admin = ApiClient(strict_server, project="ops", roles=("cloud_admin",))
    other = ApiClient(strict_server, project="p9", roles=("member",))
    private = other.create_image(visibility="private")
    assert cloud_admin.get(f"/v2/images/{private['id']}").status_code == 200
    assert cloud_admin.create_image(visibility="public")["visibility"] == "public"


# -- refusing to start ----------------------------------------------------------------------------

@pytest.mark.parametrize("policy_text, protection_text, fragment", [
    (None, None, "policy file not found"),
    ("{not json", None, "malformed policy file"),
    ('{"a": "http://example.org/check"}', None, "http"),
    ('{"a": "rule:b", "b": "rule:a"}', None, "cycle"),
    ("{}", "[(unclosed]\ncreate = @\nread = @\nupdate = @\ndelete = @\n", "(unclosed"),
    ("{}", "[x]\ncreate = @\nraed = @\nupdate = @\ndelete = @\n", "'read'"),
    ("{}", "[x]\ncreate = @, !\nread = @\nupdate = @\ndelete = @\n", "cannot be used together"),
])
def test_bad_policy_or_protection_file_stops_the_service(tmp_path, policy_text, protection_text,
                                                         fragment):
    policy = tmp_path / "policy.json"
    if policy_text is not None:
        policy.write_text(policy_text)
    overrides = {"oslo_policy": {"policy_file": str(policy)}}
    if protection_text is not None:
        protection = tmp_path / "protection.conf"
        protection.write_text(protection_text)
        overrides["DEFAULT"] = {"property_protection_file": str(protection)}
    config, _port = write_config(tmp_path, f"sqlite:///{tmp_path}/db.sqlite", overrides)
    assert run_manage(config, "db", "sync").returncode == 0
    started = subprocess.run([str(BIN / "glancelite-api"), "--config-file", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert fragment in started.stderr
    checked = run_manage(config, "check-config")
    assert checked.returncode == 1
    assert fragment in checked.stdout + checked.stderr


def test_check_config_passes_a_good_configuration(tmp_path):
    overrides = {"DEFAULT": {"property_protection_file": str(ROLES_FILE)}}
    config, _port = write_config(tmp_path, f"sqlite:///{tmp_path}/db.sqlite", overrides)
    checked = run_manage(config, "check-config")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "configuration OK" in checked.stdout
