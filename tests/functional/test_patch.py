"""PATCH /v2/images/{id}: both JSON-patch dialects, Glance's rules and messages, atomicity
and concurrent updates."""
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import DATABASES
from tests.support.server import PATCH_V20, PATCH_V21, ApiClient, running_server

LIMITS = {"DEFAULT": {"image_property_quota": 4, "image_tag_quota": 3,
                      "show_multiple_locations": True}}


@pytest.fixture(scope="module", params=DATABASES)
def limited_server(request, database_url_factory, tmp_path_factory):
    """A server with small quotas and visible locations, shared by this module's tests."""
    url = database_url_factory(request.param)
    with running_server(tmp_path_factory.mktemp("limited"), url, LIMITS) as base_url:
        yield base_url


@pytest.fixture
def limited_client(limited_server):
    return ApiClient(limited_server, project=f"p-{uuid.uuid4().hex[:8]}")


def patch(client, image, changes, media_type=PATCH_V21):
    return client.patch(f"/v2/images/{image['id']}", changes, media_type=media_type)


def show(client, image):
    response = client.get(f"/v2/images/{image['id']}")
    assert response.status_code == 200, response.text
    return response.json()


def error(response, code):
    assert response.status_code == code, response.text
    return response.json()["message"]


def shape_a(message):
    """Glance's common error message: the text, then the break."""
    return f"{message}<br /><br />\n\n\n"


def shape_b(explanation, message):
    """webob's detail shape: the status's default explanation, then the text."""
    return f"{explanation}<br /><br />\n{message}\n\n"


DENIED = "Access was denied to this resource."
CONFLICT = "There was a conflict when trying to complete your request."


# -- success paths --------------------------------------------------------------------------

def test_empty_patch_returns_the_image_unchanged(project_client):
    client = project_client()
    image = client.create_image(name="same", foo="bar")
    response = patch(client, image, [])
    assert response.status_code == 200
    assert response.json() == image
    assert show(client, image) == image


def test_glanceclient_style_patch_removes_adds_and_replaces_in_one_request(project_client):
    client = project_client()
    image = client.create_image(name="before", hw_firmware_type="bios", tags=["old"])
    time.sleep(1.1)  # updated_at has whole seconds
    response = patch(client, image, [
        {"op": "remove", "path": "/hw_firmware_type"},
        {"op": "add", "path": "/foo", "value": "bar"},
        {"op": "add", "path": "/os_distro", "value": "cirros"},
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "replace", "path": "/disk_format", "value": "qcow2"},
        {"op": "replace", "path": "/container_format", "value": "bare"},
        {"op": "replace", "path": "/tags", "value": ["a", "b"]},
    ])
    assert response.status_code == 200, response.text
    updated = response.json()
    assert "hw_firmware_type" not in updated
    assert (updated["foo"], updated["os_distro"], updated["name"]) == ("bar", "cirros", "after")
    assert (updated["min_ram"], updated["disk_format"], updated["container_format"]) == \
        (512, "qcow2", "bare")
    assert sorted(updated["tags"]) == ["a", "b"]
    assert updated["updated_at"] > image["updated_at"]
    assert updated["created_at"] == image["created_at"]
    assert show(client, image) == updated


def test_openstacksdk_style_add_overwrites_existing_keys(project_client):
    client = project_client()
    image = client.create_image(name="sdk", foo="old", min_ram=1, tags=["x"])
    response = patch(client, image, [
        {"op": "add", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/foo", "value": "new"},
        {"op": "add", "path": "/min_ram", "value": 256},
        {"op": "add", "path": "/protected", "value": True},
        {"op": "add", "path": "/os_hidden", "value": True},
        {"op": "add", "path": "/tags", "value": ["y", "y", "z"]},
    ])
    assert response.status_code == 200, response.text
    updated = show(client, image)
    assert (updated["name"], updated["foo"], updated["min_ram"]) == ("renamed", "new", 256)
    assert updated["protected"] is True and updated["os_hidden"] is True
    assert sorted(updated["tags"]) == ["y", "z"]


def test_a_key_can_be_removed_and_added_again_in_one_patch(project_client):
    client = project_client()
    image = client.create_image(foo="one")
    response = patch(client, image, [{"op": "remove", "path": "/foo"},
                                     {"op": "add", "path": "/foo", "value": "two"},
                                     {"op": "replace", "path": "/foo", "value": "three"}])
    assert response.status_code == 200, response.text
    assert show(client, image)["foo"] == "three"


def test_nullable_attributes_accept_null_and_tags_can_be_emptied(project_client):
    client = project_client()
    image = client.create_image(name="n", disk_format="raw", tags=["a"])
    response = patch(client, image, [{"op": "replace", "path": "/name", "value": None},
                                     {"op": "replace", "path": "/disk_format", "value": None},
                                     {"op": "replace", "path": "/tags", "value": []}])
    assert response.status_code == 200, response.text
    updated = show(client, image)
    assert updated["name"] is None and updated["disk_format"] is None and updated["tags"] == []


@pytest.mark.parametrize("pointer, key", [
    ("/a~1b", "a/b"), ("/c~0d", "c~d"), ("/~01", "~1"), ("/ spaced ", "spaced"),
])
def test_json_pointer_segments_are_unescaped(project_client, pointer, key):
    client = project_client()
    image = client.create_image()
    assert patch(client, image, [{"op": "add", "path": pointer, "value": "v"}]).status_code == 200
    assert show(client, image)[key] == "v"


# -- the v2.0 dialect -----------------------------------------------------------------------

def test_v20_dialect_names_the_op_as_key(project_client):
    client = project_client()
    image = client.create_image(name="old", foo="bar", gone="x")
    response = patch(client, image, [{"add": "/new", "value": "n"},
                                     {"replace": "/name", "value": "v20"},
                                     {"replace": "/foo", "value": "baz"},
                                     {"remove": "/gone"}], media_type=PATCH_V20)
    assert response.status_code == 200, response.text
    updated = show(client, image)
    assert (updated["new"], updated["name"], updated["foo"]) == ("n", "v20", "baz")
    assert "gone" not in updated


@pytest.mark.parametrize("key", ["foo", "name", "tags"])
def test_v20_add_of_an_existing_key_conflicts(project_client, key):
    client = project_client()
    image = client.create_image(name="n", foo="bar")
    value = ["t"] if key == "tags" else "x"
    response = patch(client, image, [{"add": f"/{key}", "value": value}], media_type=PATCH_V20)
    assert error(response, 409) == shape_b(CONFLICT, f"Property {key} already present.")
    assert show(client, image) == image


@pytest.mark.parametrize("change, message", [
    ({"op": "add", "path": "/foo", "value": "x"},
     'Operation objects must contain exactly one member named "add", "remove", or "replace".'),
    ({"move": "/foo", "value": "x"},
     'Operation objects must contain exactly one member named "add", "remove", or "replace".'),
    ({"add": "/foo", "replace": "/foo", "value": "x"},
     'Operation objects must contain only one member named "add", "remove", or "replace".'),
    ({"add": "/foo"}, 'Operation "add" requires a member named "value".'),
    ({"replace": "foo", "value": "x"}, 'Pointer `foo` does not start with "/".'),
])
def test_v20_malformed_operations(project_client, change, message):
    client = project_client()
    image = client.create_image()
    assert error(patch(client, image, [change], media_type=PATCH_V20), 400) == shape_a(message)


# -- media type and body shape --------------------------------------------------------------

@pytest.mark.parametrize("content_type, shown", [
    ("application/json", "application/json"),
    ("application/json-patch+json", "application/json-patch+json"),
    (None, "text/plain"),
])
def test_other_media_types_are_415_with_accept_patch(project_client, content_type, shown):
    client = project_client()
    image = client.create_image(name="kept")
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.request("PATCH", f"/v2/images/{image['id']}", headers=headers,
                              data=b'[{"op": "replace", "path": "/name", "value": "x"}]')
    assert response.status_code == 415
    assert response.json()["message"] == \
        f"The request media type {shown} is not supported by this server.\n<br /><br />\n"
    assert response.headers["Accept-Patch"] == \
        f"{PATCH_V20}, {PATCH_V21}"
    assert show(client, image)["name"] == "kept"


def test_media_type_parameters_are_ignored(project_client):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": "add", "path": "/x", "value": "y"}],
                     media_type=f"{PATCH_V21}; charset=UTF-8")
    assert response.status_code == 200, response.text


def test_415_comes_before_the_image_lookup(project_client):
    response = project_client().patch(f"/v2/images/{uuid.uuid4()}", [],
                                      media_type="application/json")
    assert response.status_code == 415


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "Malformed JSON in request body."),
    (b"", "Body expected in request."),
    (b'"x"', "Unexpected body type. Expected list/dict."),
    (b'{"op": "add", "path": "/x", "value": "y"}',
     "Request body must be a JSON array of operation objects."),
    (b"[1]", "Operations must be JSON objects."),
])
def test_body_must_be_a_json_array_of_objects(project_client, raw, message):
    client = project_client()
    image = client.create_image()
    response = client.request("PATCH", f"/v2/images/{image['id']}", data=raw,
                              headers={"Content-Type": PATCH_V21})
    assert error(response, 400) == shape_a(message)


@pytest.mark.parametrize("change, message", [
    ({}, "Unable to find `op` in JSON Schema change. It must be one of the following: add, "
         "remove, replace."),
    ({"path": "/name", "value": "x"}, "Unable to find `op` in JSON Schema change. It must be "
                                      "one of the following: add, remove, replace."),
    ({"op": "move", "path": "/name", "from": "/x"},
     "Invalid operation: `move`. It must be one of the following: add, remove, replace."),
    ({"op": "test", "path": "/name", "value": "x"},
     "Invalid operation: `test`. It must be one of the following: add, remove, replace."),
    ({"op": "replace", "value": "x"}, "Unable to find 'path' in JSON Schema change"),
    ({"op": "add", "path": "/name"}, 'Operation "add" requires a member named "value".'),
    ({"op": "replace", "path": "/name"}, 'Operation "replace" requires a member named "value".'),
    ({"op": "replace", "path": "name", "value": "x"}, 'Pointer `name` does not start with "/".'),
    ({"op": "replace", "path": "", "value": "x"}, 'Pointer `` does not start with "/".'),
    ({"op": "replace", "path": 5, "value": "x"}, 'Pointer `5` does not start with "/".'),
    ({"op": "replace", "path": "/name/", "value": "x"}, 'Pointer `/name/` end with "/".'),
    ({"op": "add", "path": "/a//b", "value": "x"}, 'Pointer `/a//b` contains adjacent "/".'),
    ({"op": "add", "path": "/a~2b", "value": "x"},
     'Pointer `/a~2b` contains "~" not part of a recognized escape sequence.'),
    ({"op": "add", "path": "/a~", "value": "x"},
     'Pointer `/a~` contains "~" not part of a recognized escape sequence.'),
    ({"op": "add", "path": "/a/b", "value": "x"}, "Invalid JSON pointer for this resource: '/a/b'"),
    ({"op": "add", "path": "/tags/-", "value": "x"},
     "Invalid JSON pointer for this resource: '/tags/-'"),
    ({"op": "remove", "path": "/status/x"}, "Invalid JSON pointer for this resource: '/status/x'"),
    ({"op": "add", "path": "/locations", "value": []},
     "Invalid JSON pointer for this resource: '/locations'"),
    ({"op": "remove", "path": "/locations"}, "Invalid JSON pointer for this resource: '/locations'"),
    ({"op": "replace", "path": "/locations/0", "value": []},
     "Invalid JSON pointer for this resource: '/locations/0'"),
    ({"op": "add", "path": "/locations/0/url", "value": "x"},
     "Invalid JSON pointer for this resource: '/locations/0/url'"),
])
def test_malformed_operations_are_400(project_client, change, message):
    client = project_client()
    image = client.create_image(name="kept")
    assert error(patch(client, image, [change]), 400) == shape_a(message)
    assert show(client, image) == image


# -- what may be changed --------------------------------------------------------------------

@pytest.mark.parametrize("key", ["status", "id", "checksum", "size", "virtual_size", "created_at",
                                 "updated_at", "os_hash_algo", "os_hash_value", "direct_url",
                                 "self", "file", "schema"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_attributes_are_403(project_client, key, op):
    client = project_client()
    image = client.create_image()
    change = {"op": op, "path": f"/{key}", "value": "x"}
    assert error(patch(client, image, [change]), 403) == shape_a(f"Attribute '{key}' is read-only.")


@pytest.mark.parametrize("key", ["location", "deleted", "deleted_at", "os_glance_import_task"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_reserved_attributes_are_403(project_client, key, op):
    client = project_client()
    image = client.create_image()
    change = {"op": op, "path": f"/{key}", "value": "x"}
    assert error(patch(client, image, [change]), 403) == shape_a(f"Attribute '{key}' is reserved.")


@pytest.mark.parametrize("key", ["name", "visibility", "protected", "os_hidden", "owner",
                                 "disk_format", "container_format", "min_ram", "min_disk", "tags"])
def test_core_attributes_cannot_be_removed(project_client, key):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": "remove", "path": f"/{key}"}])
    assert error(response, 403) == shape_b(DENIED, f"Property {key} may not be removed.")


@pytest.mark.parametrize("op", ["replace", "remove"])
def test_missing_extra_property_is_409(project_client, op):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": op, "path": "/nokey", "value": "x"}])
    assert error(response, 409) == shape_b(CONFLICT, "Property nokey does not exist.")


@pytest.mark.parametrize("key, value, text", [
    ("visibility", "bogus", "'bogus' is not one of"),
    ("foo", 5, "5 is not of type 'string'"),
    ("foo", None, "None is not of type 'string'"),
    ("min_ram", "1", "'1' is not of type 'integer'"),
    ("protected", None, "None is not of type 'boolean'"),
    ("tags", "a", "'a' is not of type 'array'"),
    ("tags", ["t" * 256], "is too long"),
    ("name", "n" * 256, "is too long"),
    ("disk_format", "exe", "'exe' is not one of"),
    ("kernel_id", "not-a-uuid", "does not match"),
])
def test_values_are_checked_against_the_image_schema(project_client, key, value, text):
    client = project_client()
    image = client.create_image()
    message = error(patch(client, image, [{"op": "add", "path": f"/{key}", "value": value}]), 400)
    assert message.startswith("Provided object does not match schema 'image': ")
    assert text in message


def test_well_known_properties_accept_null(project_client):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": "add", "path": "/kernel_id", "value": None}])
    assert response.status_code == 200, response.text
    assert show(client, image)["kernel_id"] == ""


def test_property_names_longer_than_255_are_400(project_client):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": "add", "path": "/" + "k" * 256, "value": "v"}])
    assert error(response, 400) == \
        shape_a("Custom property should not be greater than 255 characters.")


@pytest.mark.parametrize("key", ["min_ram", "min_disk"])
def test_negative_minimums_are_400(project_client, key):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": "replace", "path": f"/{key}", "value": -1}])
    assert error(response, 400) == \
        shape_a(f"Invalid value '-1' for parameter '{key}': Cannot be a negative value")


def test_only_admins_make_images_public(project_client, admin):
    client = project_client()
    image = client.create_image()
    for op in ("replace", "add"):
        response = patch(client, image, [{"op": op, "path": "/visibility", "value": "public"}])
        assert error(response, 403) == \
            shape_a("You are not authorized to complete publicize_image action.")
    for visibility in ("community", "private", "shared"):
        response = patch(client, image, [{"op": "replace", "path": "/visibility",
                                          "value": visibility}])
        assert response.status_code == 200 and response.json()["visibility"] == visibility
    response = patch(admin, image, [{"op": "replace", "path": "/visibility", "value": "public"}])
    assert response.status_code == 200 and response.json()["visibility"] == "public"


@pytest.mark.parametrize("op", ["replace", "add"])
def test_non_admins_cannot_change_the_owner(project_client, op):
    client, other = project_client(), project_client()
    image = client.create_image(visibility="private")
    response = patch(client, image, [{"op": op, "path": "/owner", "value": other.project}])
    assert error(response, 403) == shape_b(DENIED, "Owner can't be updated by non admin.")
    assert show(client, image)["owner"] == client.project
    assert other.get(f"/v2/images/{image['id']}").status_code == 404


def test_admin_changes_the_owner_and_the_old_owner_loses_access(project_client, admin):
    client, other = project_client(), project_client()
    image = client.create_image(visibility="private")
    response = patch(admin, image, [{"op": "replace", "path": "/owner", "value": other.project}])
    assert response.status_code == 200 and response.json()["owner"] == other.project
    assert client.get(f"/v2/images/{image['id']}").status_code == 404
    assert show(other, image)["owner"] == other.project


def test_formats_change_only_while_queued(project_client):
    client = project_client()
    image = client.create_image(disk_format="raw", container_format="bare")
    upload = client.put(f"/v2/images/{image['id']}/file", data=b"data",
                        headers={"Content-Type": "application/octet-stream"})
    assert upload.status_code == 204, upload.text
    for key, value in (("disk_format", "qcow2"), ("container_format", "bare")):
        response = patch(client, image, [{"op": "replace", "path": f"/{key}", "value": value}])
        assert error(response, 403) == \
            shape_a(f"Attribute {key} can be only replaced for a queued image.")
    response = patch(client, image, [{"op": "replace", "path": "/name", "value": "still"}])
    assert response.status_code == 200 and response.json()["status"] == "active"


# -- who may patch --------------------------------------------------------------------------

def test_non_owner_of_a_visible_image_is_403(project_client, admin):
    owner, stranger = project_client(), project_client()
    image = admin.create_image(visibility="public", owner=owner.project, name="theirs")
    response = patch(stranger, image, [{"op": "replace", "path": "/name", "value": "mine"}])
    assert error(response, 403) == shape_a("You do not own this image")
    assert show(owner, image)["name"] == "theirs"


def test_a_member_of_a_shared_image_cannot_patch_it(project_client):
    owner, member = project_client(), project_client()
    image = owner.create_image(name="shared")
    added = owner.post(f"/v2/images/{image['id']}/members", json={"member": member.project})
    assert added.status_code == 200, added.text
    response = patch(member, image, [{"op": "replace", "path": "/name", "value": "mine"}])
    assert error(response, 403) == shape_a("You do not own this image")
    assert show(owner, image)["name"] == "shared"


def test_image_without_owner_is_only_patched_by_admins(project_client, anon, admin):
    image = anon.create_image(visibility="public")
    response = patch(project_client(), image, [{"op": "add", "path": "/x", "value": "y"}])
    assert error(response, 403) == shape_a("You do not own this image")
    assert patch(admin, image, [{"op": "add", "path": "/x", "value": "y"}]).status_code == 200


def test_invisible_or_unknown_image_is_404(project_client):
    owner, stranger = project_client(), project_client()
    image = owner.create_image(visibility="private")
    change = [{"op": "replace", "path": "/name", "value": "x"}]
    for image_id in (image["id"], str(uuid.uuid4()), "x" * 300):
        response = stranger.patch(f"/v2/images/{image_id}", change)
        assert error(response, 404) == shape_a(f"No image found with ID {image_id}")


def test_deleted_image_is_404(project_client):
    client = project_client()
    image = client.create_image()
    assert client.delete(f"/v2/images/{image['id']}").status_code == 204
    response = patch(client, image, [{"op": "add", "path": "/x", "value": "y"}])
    assert response.status_code == 404


def test_a_malformed_patch_is_400_even_for_an_invisible_image(project_client):
    owner, stranger = project_client(), project_client()
    image = owner.create_image(visibility="private")
    response = patch(stranger, image, [{"op": "move", "path": "/name"}])
    assert response.status_code == 400


# -- atomicity ------------------------------------------------------------------------------

@pytest.mark.parametrize("failing, code", [
    ({"op": "remove", "path": "/nokey"}, 409),
    ({"op": "replace", "path": "/visibility", "value": "public"}, 403),
    ({"op": "replace", "path": "/min_disk", "value": -5}, 400),
    ({"op": "remove", "path": "/name"}, 403),
])
def test_a_failing_operation_leaves_the_image_unchanged(project_client, failing, code):
    client = project_client()
    image = client.create_image(name="orig", foo="bar", tags=["t"])
    response = patch(client, image, [
        {"op": "add", "path": "/new", "value": "x"},
        {"op": "replace", "path": "/name", "value": "changed"},
        {"op": "remove", "path": "/foo"},
        {"op": "replace", "path": "/tags", "value": ["u"]},
        failing,
    ])
    assert response.status_code == code, response.text
    assert show(client, image) == image


# -- locations ------------------------------------------------------------------------------

@pytest.mark.parametrize("change, verb", [
    ({"op": "add", "path": "/locations/-", "value": {"url": "http://h/x", "metadata": {}}}, "add"),
    ({"op": "remove", "path": "/locations/0"}, "remove"),
    ({"op": "replace", "path": "/locations", "value": [{"url": "http://h/x", "metadata": {}}]},
     "update"),
])
def test_location_operations_are_403_while_locations_are_invisible(project_client, change, verb):
    client = project_client()
    image = client.create_image()
    assert error(patch(client, image, [change]), 403) == \
        shape_a(f"It's not allowed to {verb} locations if locations are invisible.")


def test_locations_cannot_be_set_to_an_empty_list(project_client):
    client = project_client()
    image = client.create_image()
    response = patch(client, image, [{"op": "replace", "path": "/locations", "value": []}])
    assert error(response, 403) == shape_b(DENIED, "Cannot set locations to empty list.")


# -- quotas ---------------------------------------------------------------------------------

def test_tags_over_quota_are_413_and_change_nothing(limited_client):
    image = limited_client.create_image(tags=["a"])
    response = patch(limited_client, image,
                     [{"op": "replace", "path": "/tags", "value": ["a", "b", "c", "d"]}])
    assert error(response, 413) == shape_a("The limit has been exceeded on the number of allowed "
                                           "image tags. Attempted: 4, Maximum: 3")
    assert show(limited_client, image)["tags"] == ["a"]
    duplicates = [{"op": "replace", "path": "/tags", "value": ["a", "b", "c", "c", "c"]}]
    assert patch(limited_client, image, duplicates).status_code == 200


def test_properties_over_quota_are_413_and_change_nothing(limited_client):
    image = limited_client.create_image(p1="1", p2="2", p3="3")
    response = patch(limited_client, image, [{"op": "add", "path": "/p4", "value": "4"},
                                             {"op": "add", "path": "/p5", "value": "5"}])
    assert error(response, 413) == shape_a("The limit has been exceeded on the number of allowed "
                                           "image properties. Attempted: 5, Maximum: 4")
    assert show(limited_client, image) == image
    swap = [{"op": "remove", "path": "/p1"}, {"op": "add", "path": "/p4", "value": "4"},
            {"op": "add", "path": "/p5", "value": "5"}, {"op": "replace", "path": "/p2", "value": "x"}]
    assert patch(limited_client, image, swap).status_code == 200


# -- concurrency ----------------------------------------------------------------------------

def _concurrently(client, image, patches):
    """Send the patches at the same moment, each on its own warmed-up connection."""
    clients = [ApiClient(client.base_url, project=client.project) for _ in patches]
    for each in clients:
        each.get("/versions")
    barrier = threading.Barrier(len(patches))

    def send(each, changes):
        barrier.wait()
        return patch(each, image, changes).status_code

    with ThreadPoolExecutor(max_workers=len(patches)) as pool:
        return list(pool.map(send, clients, patches))


def test_concurrent_patches_of_different_keys_all_survive(project_client):
    client = project_client()
    image = client.create_image(name="race")
    patches = [[{"op": "add", "path": f"/k{i}", "value": str(i)}] for i in range(12)]
    patches += [[{"op": "replace", "path": "/min_ram", "value": 64}],
                [{"op": "replace", "path": "/tags", "value": ["t"]}]]
    assert _concurrently(client, image, patches) == [200] * len(patches)
    final = show(client, image)
    assert {f"k{i}": str(i) for i in range(12)}.items() <= final.items()
    assert final["min_ram"] == 64 and final["tags"] == ["t"] and final["name"] == "race"


def test_concurrent_adds_of_one_new_key_never_fail(project_client):
    client = project_client()
    image = client.create_image()
    for key in ("one", "two", "three"):
        patches = [[{"op": "add", "path": f"/{key}", "value": str(i)}] for i in range(12)]
        assert _concurrently(client, image, patches) == [200] * len(patches)
        assert show(client, image)[key] in {str(i) for i in range(12)}


def test_concurrent_patches_cannot_overrun_the_property_quota(limited_client):
    image = limited_client.create_image()
    patches = [[{"op": "add", "path": f"/q{i}", "value": "v"}] for i in range(12)]
    assert sorted(_concurrently(limited_client, image, patches)) == [200] * 4 + [413] * 8
    assert len([key for key in show(limited_client, image) if key.startswith("q")]) == 4
