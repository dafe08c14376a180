"""Create, show and delete images; the image document; errors for bad create bodies."""
import re
import uuid

import pytest

CORE_KEYS = {"name", "disk_format", "container_format", "visibility", "size", "virtual_size",
             "status", "checksum", "protected", "min_ram", "min_disk", "owner", "os_hidden",
             "os_hash_algo", "os_hash_value", "id", "created_at", "updated_at", "tags", "self",
             "file", "schema"}
# What Glance sends: "req-" and a version 4 UUID.
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_create_returns_201_location_and_full_document(project_client, server):
    client = project_client()
    response = client.post("/v2/images", json={"name": "cirros", "disk_format": "qcow2",
                                                "container_format": "bare", "os_distro": "cirros",
                                                "tags": ["a", "a", "b"]})
    assert response.status_code == 201
    image = response.json()
    assert response.headers["Location"] == f"{server}/v2/images/{image['id']}"
    assert set(image) == CORE_KEYS | {"os_distro"}
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == client.project
    assert sorted(image["tags"]) == ["a", "b"]
    assert image["size"] is None and image["checksum"] is None
    assert image["protected"] is False and image["os_hidden"] is False  # not SQLite's 0
    assert image["min_ram"] == 0 and image["min_disk"] == 0
    assert image["created_at"] == image["updated_at"]
    assert image["created_at"].endswith("Z") and "." not in image["created_at"]
    assert image["self"] == f"/v2/images/{image['id']}"
    assert REQUEST_ID.match(response.headers["X-Openstack-Request-Id"])
    shown = client.get(f"/v2/images/{image['id']}")
    assert shown.status_code == 200
    assert shown.json() == image
    assert REQUEST_ID.match(shown.headers["X-Openstack-Request-Id"])
    assert shown.headers["X-Openstack-Request-Id"] != response.headers["X-Openstack-Request-Id"]


def test_awkward_property_values_and_tags_come_back_exactly(project_client):
    """Shown images carry their properties and tags packed as JSON by the database: quotes,
    backslashes, newlines, non-ASCII and long values must survive the trip unchanged."""
    client = project_client()
    properties = {"quoted": 'say "hi"', "backslash": "C:\\dir\\x", "lines": "a\nb\tc",
                  "unicode": "Zürich – 東京 🚀", "json_like": '[1, {"a": null}]', "empty": "",
                  "long": "v" * 65535}
    tags = ["t\"1", "ünï", "a b"]
    created = client.create_image(disk_format="raw", container_format="bare", tags=tags,
                                  **properties)
    for document in (created, client.get(f"/v2/images/{created['id']}").json()):
        assert {key: document[key] for key in properties} == properties
        assert document["tags"] == sorted(tags)


def test_create_with_own_id_and_duplicate_id_conflicts(project_client):
    client = project_client()
    image_id = str(uuid.uuid4())
    assert client.create_image(id=image_id)["id"] == image_id
    again = client.post("/v2/images", json={"id": image_id})
    assert again.status_code == 409
    assert f"Image ID {image_id} already exists!" in again.json()["message"]


@pytest.mark.parametrize("body, code, message", [
    ({"status": "active"}, 403, "Attribute 'status' is read-only."),
    ({"self": "x"}, 403, "Attribute 'self' is read-only."),
    ({"checksum": "abc"}, 403, "Attribute 'checksum' is read-only."),
    ({"os_hash_value": "abc"}, 403, "Attribute 'os_hash_value' is read-only."),
    ({"location": "http://x"}, 403, "Attribute 'location' is reserved."),
    ({"os_glance_foo": "x"}, 403, "Attribute 'os_glance_foo' is reserved."),
    ({"locations": []}, 403, "Attribute 'locations' is reserved."),
    ({"visibility": "bogus"}, 400, "'bogus' is not one of"),
    ({"foo": 5}, 400, "5 is not of type 'string'"),
    ({"foo": None}, 400, "None is not of type 'string'"),
    ({"min_ram": "5"}, 400, "'5' is not of type 'integer'"),
    ({"protected": "yes"}, 400, "'yes' is not of type 'boolean'"),
    ({"id": "not-a-uuid"}, 400, "does not match"),
    ({"name": "n" * 256}, 400, "is too long"),
    ({"disk_format": "exe"}, 400, "'exe' is not one of"),
    ({"k" * 256: "v"}, 400, "Custom property should not be greater than 255 characters."),
    ({"min_ram": -1}, 400, "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value"),
    ({"owner": "someone-else"}, 403, "You are not permitted to create images owned by 'someone-else'."),
    ({"visibility": "public"}, 403, "You are not authorized to complete publicize_image action."),
])
def test_create_rejects_bad_bodies(project_client, body, code, message):
    response = project_client().post("/v2/images", json=body)
    assert response.status_code == code, response.text
    assert message in response.json()["message"]


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "Malformed JSON in request body."),
    (b"", "Body expected in request."),
    (b"[1, 2]", "Request body must be a JSON object."),
    (b"123", "Unexpected body type. Expected list/dict."),
    (b"[" * 100000 + b"]" * 100000, "Request is too large."),
])
def test_create_rejects_malformed_json(project_client, raw, message):
    response = project_client().post("/v2/images", data=raw,
                                      headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 413), response.text
    assert message in response.json()["message"]


def test_deeply_nested_json_is_400_not_500(project_client):
    raw = b'{"a": ' * 5000 + b"1" + b"}" * 5000
    response = project_client().post("/v2/images", data=raw)
    assert response.status_code == 400


def test_admin_may_create_public_and_for_other_owner(admin):
    image = admin.create_image(visibility="public", owner="somebody")
    assert image["visibility"] == "public" and image["owner"] == "somebody"


def test_unknown_or_malformed_image_id_is_404(project_client):
    client = project_client()
    for image_id in (str(uuid.uuid4()), "..%2F..%2Fetc%2Fpasswd", "x" * 300, "%00", "a%20b"):
        response = client.get(f"/v2/images/{image_id}")
        assert response.status_code == 404, image_id


def test_delete_then_gone_everywhere(project_client, admin):
    client = project_client()
    image = client.create_image(name="doomed")
    assert client.delete(f"/v2/images/{image['id']}").status_code == 204
    assert client.get(f"/v2/images/{image['id']}").status_code == 404
    assert admin.get(f"/v2/images/{image['id']}").status_code == 404
    again = client.delete(f"/v2/images/{image['id']}")
    assert again.status_code == 404
    assert f"Failed to find image {image['id']} to delete" in again.json()["message"]
    reused = client.post("/v2/images", json={"id": image["id"]})
    assert reused.status_code == 409


def test_protected_image_cannot_be_deleted_even_by_admin(admin):
    image = admin.create_image(protected=True)
    response = admin.delete(f"/v2/images/{image['id']}")
    assert response.status_code == 403
    assert f"Image {image['id']} is protected and cannot be deleted." in response.json()["message"]
    assert admin.get(f"/v2/images/{image['id']}").status_code == 200


def test_non_owner_cannot_delete_public_image(admin, project_client):
    image = admin.create_image(visibility="public")
    response = project_client().delete(f"/v2/images/{image['id']}")
    assert response.status_code == 403
    assert "You do not own this image" in response.json()["message"]


def test_private_image_is_404_for_other_projects(project_client):
    owner, stranger = project_client(), project_client()
    image = owner.create_image(visibility="private")
    assert stranger.get(f"/v2/images/{image['id']}").status_code == 404
    assert stranger.delete(f"/v2/images/{image['id']}").status_code == 404


def test_unauthenticated_context_is_admin_without_owner(anon):
    image = anon.create_image(name="no-owner", visibility="public")
    assert image["owner"] is None


def test_invalid_identity_status_is_401(server):
    import requests
    response = requests.get(f"{server}/v2/images/x", headers={"X-Identity-Status": "Invalid",
                                                              "Accept": "application/json"})
    assert response.status_code == 401


def test_roles_are_case_insensitive(server):
    from tests.support.server import ApiClient
    client = ApiClient(server, project="p-upper", roles=("Admin",))
    assert client.create_image(visibility="public")["visibility"] == "public"


def test_nul_characters_never_reach_the_database(project_client):
    client = project_client()
    assert client.post("/v2/images", json={"name": "a\u0000b"}).status_code == 400
    assert client.post("/v2/images", json={"x\u0000": "b"}).status_code == 400
    assert client.get("/v2/images?name=%00").status_code == 400
