"""PUT and DELETE /v2/images/{id}/tags/{tag}: a set of short strings, owner only."""
import uuid

import pytest

from tests.conftest import DATABASES
from tests.support.server import ApiClient


def tags_of(client, image):
    response = client.get(f"/v2/images/{image['id']}")
    assert response.status_code == 200, response.text
    return response.json()["tags"]


def message(response, code):
    assert response.status_code == code, response.text
    return response.json()["message"]


def test_put_adds_a_tag_once_and_delete_removes_it(project_client):
    client = project_client()
    image = client.create_image(tags=["keep"])
    for _ in range(2):
        response = client.put(f"/v2/images/{image['id']}/tags/new")
        assert response.status_code == 204 and response.content == b""
    assert sorted(tags_of(client, image)) == ["keep", "new"]
    response = client.delete(f"/v2/images/{image['id']}/tags/new")
    assert response.status_code == 204 and response.content == b""
    assert tags_of(client, image) == ["keep"]


def test_tags_are_url_decoded(project_client):
    client = project_client()
    image = client.create_image()
    assert client.put(f"/v2/images/{image['id']}/tags/gabe%40example.com").status_code == 204
    assert client.put(f"/v2/images/{image['id']}/tags/two%20words").status_code == 204
    assert sorted(tags_of(client, image)) == ["gabe@example.com", "two words"]
    assert client.delete(f"/v2/images/{image['id']}/tags/gabe%40example.com").status_code == 204
    assert tags_of(client, image) == ["two words"]


def test_tags_are_case_sensitive(project_client):
    client = project_client()
    image = client.create_image()
    for tag in ("Tag", "tag"):
        assert client.put(f"/v2/images/{image['id']}/tags/{tag}").status_code == 204
    assert sorted(tags_of(client, image)) == ["Tag", "tag"]


def test_tag_longer_than_255_is_400(project_client):
    client = project_client()
    image = client.create_image()
    assert client.put(f"/v2/images/{image['id']}/tags/{'t' * 255}").status_code == 204
    response = client.put(f"/v2/images/{image['id']}/tags/{'t' * 300}")
    assert message(response, 400).startswith("Provided object does not match schema 'image': ")
    assert tags_of(client, image) == ["t" * 255]


def test_a_too_long_tag_is_400_before_the_image_is_looked_up(project_client):
    response = project_client().put(f"/v2/images/{uuid.uuid4()}/tags/{'t' * 300}")
    assert response.status_code == 400


@pytest.mark.parametrize("kind", DATABASES)
def test_tag_quota_is_413(make_server, kind):
    client = ApiClient(make_server(kind, {"DEFAULT": {"image_tag_quota": 3}}), project="p-quota")
    image = client.create_image(tags=["a", "b"])
    assert client.put(f"/v2/images/{image['id']}/tags/c").status_code == 204
    response = client.put(f"/v2/images/{image['id']}/tags/d")
    assert message(response, 413) == ("The limit has been exceeded on the number of allowed image "
                                      "tags. Attempted: 4, Maximum: 3<br /><br />\n\n\n")
    assert client.put(f"/v2/images/{image['id']}/tags/a").status_code == 204
    assert sorted(tags_of(client, image)) == ["a", "b", "c"]


def test_non_owner_of_a_visible_image_is_403(project_client, admin):
    owner, stranger = project_client(), project_client()
    image = admin.create_image(visibility="public", owner=owner.project, tags=["t"])
    response = stranger.put(f"/v2/images/{image['id']}/tags/x")
    assert message(response, 403) == f"Not allowed to update tags for image {image['id']}.<br /><br />\n\n\n"
    response = stranger.delete(f"/v2/images/{image['id']}/tags/t")
    assert message(response, 403) == f"Not allowed to delete tags for image {image['id']}.<br /><br />\n\n\n"
    assert tags_of(owner, image) == ["t"]


def test_admin_may_tag_any_image(project_client, admin):
    client = project_client()
    image = client.create_image(visibility="private")
    assert admin.put(f"/v2/images/{image['id']}/tags/by-admin").status_code == 204
    assert admin.delete(f"/v2/images/{image['id']}/tags/by-admin").status_code == 204
    assert tags_of(client, image) == []


def test_deleting_a_missing_tag_is_404(project_client):
    client = project_client()
    image = client.create_image(tags=["present"])
    response = client.delete(f"/v2/images/{image['id']}/tags/absent")
    assert message(response, 404) == "The resource could not be found.<br /><br />\n\n\n"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_invisible_or_unknown_image_is_404(project_client, method):
    owner, stranger = project_client(), project_client()
    image = owner.create_image(visibility="private", tags=["t"])
    for image_id in (image["id"], str(uuid.uuid4())):
        response = stranger.request(method, f"/v2/images/{image_id}/tags/t")
        assert message(response, 404) == f"Image {image_id} not found.<br /><br />\n\n\n"
    assert tags_of(owner, image) == ["t"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_body_is_400(project_client, method):
    client = project_client()
    image = client.create_image(tags=["t"])
    response = client.request(method, f"/v2/images/{image['id']}/tags/t", json={"tag": "t"})
    assert message(response, 400) == "A body is not expected with this request.<br /><br />\n\n\n"
    assert tags_of(client, image) == ["t"]


def test_get_on_a_tag_is_405(project_client):
    client = project_client()
    image = client.create_image(tags=["t"])
    response = client.get(f"/v2/images/{image['id']}/tags/t")
    assert response.status_code == 405
    assert response.headers["Allow"] == "PUT, DELETE"
