"""Version discovery, the schemas clients download, and HTTP-level behaviour."""
import requests

VERSION_IDS = ["v2.15", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"]


def test_versions_is_200_and_root_is_300_with_same_document(server):
    versions = requests.get(f"{server}/versions")
    root = requests.get(f"{server}/")
    assert versions.status_code == 200 and root.status_code == 300
    assert versions.json() == root.json()
    listed = versions.json()["versions"]
    assert [v["id"] for v in listed] == VERSION_IDS
    assert listed[0]["status"] == "CURRENT"
    assert {v["status"] for v in listed[1:]} == {"SUPPORTED"}
    assert {link["href"] for v in listed for link in v["links"]} == {f"{server}/v2/"}
    assert "X-Openstack-Request-Id" not in versions.headers


def test_unknown_paths_outside_v2_get_the_version_document(server):
    for path in ("/v1/images", "/v3/", "/foo"):
        response = requests.get(server + path)
        assert response.status_code == 300, path
        assert response.json()["versions"][0]["id"] == "v2.15"


def test_public_endpoint_sets_version_hrefs(make_server):
    base = make_server("sqlite", {"DEFAULT": {"public_endpoint": "https://images.example.org/"}})
    body = requests.get(f"{base}/versions").json()
    assert body["versions"][0]["links"][0]["href"] == "https://images.example.org/v2/"


def test_minor_version_prefix_and_v2_redirect(server, admin):
    image = admin.create_image(name="via-v2.1")
    response = admin.get(f"/v2.1/images/{image['id']}")
    assert response.status_code == 200 and response.json()["id"] == image["id"]
    redirect = requests.get(f"{server}/v2", allow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["Location"].endswith("/v2/")


def test_image_schema_lists_configured_formats_and_sha512_length(make_server):
    base = make_server("sqlite", {"image_format": {"disk_formats": ["raw", "qcow2"],
                                                   "container_formats": ["bare"]}})
    schema = requests.get(f"{base}/v2/schemas/image").json()
    props = schema["properties"]
    assert props["disk_format"]["enum"] == [None, "raw", "qcow2"]
    assert props["container_format"]["enum"] == [None, "bare"]
    assert props["os_hash_value"]["maxLength"] == 128
    assert props["status"]["readOnly"] is True
    assert schema["additionalProperties"] == {"type": "string"}
    assert {link["rel"] for link in schema["links"]} == {"self", "enclosure", "describedby"}
    core = {"id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
            "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "container_format",
            "disk_format", "created_at", "updated_at", "tags", "direct_url", "locations", "self",
            "file", "stores", "schema", "min_ram", "min_disk"}
    assert core <= set(props)
    assert {k for k, v in props.items() if v.get("is_base") is False} == set(props) - core
    # the server accepts exactly what the schema advertises
    client_body = {"disk_format": "vmdk"}
    created = requests.post(f"{base}/v2/images", json=client_body,
                            headers={"Accept": "application/json"})
    assert created.status_code == 400 and "'vmdk' is not one of" in created.json()["message"]


def test_collection_member_and_metadefs_schemas(server):
    images = requests.get(f"{server}/v2/schemas/images").json()
    image = requests.get(f"{server}/v2/schemas/image").json()
    assert images["properties"]["images"]["items"] == image
    member = requests.get(f"{server}/v2/schemas/member").json()
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = requests.get(f"{server}/v2/schemas/members").json()
    assert members["properties"]["members"]["items"] == member
    for name in ("namespace", "resource_type"):
        response = requests.get(f"{server}/v2/schemas/metadefs/{name}")
        assert response.status_code == 200 and response.json()["properties"]


def test_error_body_follows_accept_header(server):
    url = f"{server}/v2/images/00000000-0000-0000-0000-000000000000"
    html = requests.get(url, headers={"Accept": "*/*"})
    assert html.status_code == 404
    assert html.headers["Content-Type"].startswith("text/html")
    assert "<h1>404 Not Found</h1>" in html.text
    assert "No image found with ID 00000000-0000-0000-0000-000000000000" in html.text
    as_json = requests.get(url, headers={"Accept": "application/json"})
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.json() == {
        "message": "No image found with ID 00000000-0000-0000-0000-000000000000<br /><br />\n\n\n",
        "code": "404 Not Found", "title": "Not Found"}
    plain = requests.get(url, headers={"Accept": "application/xml"})
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert plain.text.startswith("404 Not Found\n\nNo image found with ID")


def test_wrong_method_is_405_with_allow(admin):
    image = admin.create_image()
    response = admin.put(f"/v2/images/{image['id']}")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "DELETE"}
    assert "The method PUT is not allowed for this resource. " in response.json()["message"]


def test_bodies_on_bodiless_routes_are_rejected(admin):
    image = admin.create_image()
    response = admin.get(f"/v2/images/{image['id']}", data=b'{"a": 1}')
    assert response.status_code == 400
    assert "A body is not expected with this request." in response.json()["message"]
    assert admin.delete(f"/v2/images/{image['id']}", json={"x": 1}).status_code == 400
    assert admin.get(f"/v2/images/{image['id']}").status_code == 200


def test_request_id_is_echoed_with_prefix(admin):
    response = admin.get("/v2/schemas/image", headers={"X-Openstack-Request-Id": "hello"})
    assert response.headers["X-Openstack-Request-Id"] == "req-hello"
    given = "req-11111111-2222-3333-4444-555555555555"
    response = admin.get("/v2/schemas/image", headers={"X-Openstack-Request-Id": given})
    assert response.headers["X-Openstack-Request-Id"] == given


def test_oversized_header_is_refused_before_the_app(server):
    response = requests.get(f"{server}/v2/schemas/image", headers={"X-Big": "a" * 70000})
    assert 400 <= response.status_code < 500
