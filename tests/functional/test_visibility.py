"""Who sees which image: an owner, a member project, a stranger and an admin, for every
visibility (glance-master-notes §5.1). Invisible images are 404, never 403."""
from types import SimpleNamespace

import pytest

VISIBILITIES = ["public", "private", "shared", "community"]

# GET /v2/images/{id} by owner, member, stranger, admin.
GET_CODES = {
    "public": (200, 200, 200, 200),
    "community": (200, 200, 200, 200),
    "shared": (200, 200, 404, 200),
    "private": (200, 404, 404, 200),
}

# DELETE /v2/images/{id} by member, stranger: 403 when they can see it, else 404.
DELETE_CODES = {
    "public": (403, 403),
    "community": (403, 403),
    "shared": (403, 404),
    "private": (404, 404),
}


@pytest.fixture
def cast(project_client, admin):
    return SimpleNamespace(owner=project_client(), member=project_client(),
                           stranger=project_client(), admin=admin)


def make_image(cast, visibility):
    """An image of the owner's; when shared, the member project is on it (pending)."""
    maker = cast.admin if visibility == "public" else cast.owner
    image = maker.create_image(name=visibility, visibility=visibility, owner=cast.owner.project)
    if visibility == "shared":
        added = cast.owner.post(f"/v2/images/{image['id']}/members",
                                json={"member": cast.member.project})
        assert added.status_code == 200, added.text
    return image


def set_visibility(client, image, visibility):
    response = client.patch(f"/v2/images/{image['id']}",
                            [{"op": "replace", "path": "/visibility", "value": visibility}])
    assert response.status_code == 200, response.text


def message(response):
    return response.json()["message"]


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_get_by_caller(cast, visibility):
    image = make_image(cast, visibility)
    callers = (cast.owner, cast.member, cast.stranger, cast.admin)
    for caller, expected in zip(callers, GET_CODES[visibility], strict=True):
        response = caller.get(f"/v2/images/{image['id']}")
        assert response.status_code == expected, (caller.project, response.text)
        if expected == 200:
            assert response.json()["id"] == image["id"]
        else:
            assert message(response).startswith(f"No image found with ID {image['id']}")


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_delete_by_caller(cast, visibility):
    image = make_image(cast, visibility)
    path = f"/v2/images/{image['id']}"
    for caller, expected in zip((cast.member, cast.stranger), DELETE_CODES[visibility], strict=True):
        response = caller.delete(path)
        assert response.status_code == expected, (caller.project, response.text)
        if expected == 403:
            assert message(response).startswith("You do not own this image")
        else:
            assert message(response).startswith(f"Failed to find image {image['id']} to delete")
    assert cast.owner.get(path).status_code == 200
    assert cast.owner.delete(path).status_code == 204
    for caller in (cast.owner, cast.member, cast.stranger, cast.admin):
        assert caller.get(path).status_code == 404


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_admin_deletes_anyones_image(cast, visibility):
    image = make_image(cast, visibility)
    assert cast.admin.delete(f"/v2/images/{image['id']}").status_code == 204
    assert cast.owner.get(f"/v2/images/{image['id']}").status_code == 404


@pytest.mark.parametrize("status", ["pending", "accepted", "rejected"])
def test_members_see_a_shared_image_whatever_they_answered(cast, status):
    image = make_image(cast, "shared")
    member_path = f"/v2/images/{image['id']}/members/{cast.member.project}"
    if status != "pending":
        assert cast.member.put(member_path, json={"status": status}).status_code == 200
    assert cast.member.get(f"/v2/images/{image['id']}").status_code == 200
    assert cast.member.get(member_path).json()["status"] == status


@pytest.mark.parametrize("visibility, member_sees", [("private", 404), ("community", 200)])
def test_leaving_shared_keeps_members_and_coming_back_restores_them(cast, visibility,
                                                                    member_sees):
    image = make_image(cast, "shared")
    members = f"/v2/images/{image['id']}/members"
    assert cast.member.put(f"{members}/{cast.member.project}",
                           json={"status": "accepted"}).status_code == 200
    set_visibility(cast.owner, image, visibility)
    assert cast.member.get(f"/v2/images/{image['id']}").status_code == member_sees
    listed = cast.owner.get(members)
    assert listed.status_code == 403
    assert message(listed).startswith(f"Not allowed to list members for image {image['id']}: "
                                      f"Only shared images have members.")
    if member_sees == 404:
        hidden = cast.member.get(members)
        assert hidden.status_code == 404
        assert message(hidden).startswith(f"Image {image['id']} not found.")
    set_visibility(cast.owner, image, "shared")
    assert cast.member.get(f"/v2/images/{image['id']}").status_code == 200
    rows = cast.member.get(members).json()["members"]
    assert [(m["member_id"], m["status"]) for m in rows] == [(cast.member.project, "accepted")]


def test_owner_change_cuts_the_old_owner_off(cast, project_client):
    image = make_image(cast, "shared")
    path = f"/v2/images/{image['id']}"
    heir = project_client()
    changed = cast.admin.patch(path, [{"op": "replace", "path": "/owner", "value": heir.project}])
    assert changed.status_code == 200, changed.text
    assert changed.json()["owner"] == heir.project
    assert cast.owner.get(path).status_code == 404
    assert cast.owner.delete(path).status_code == 404
    assert cast.owner.get(f"{path}/members").status_code == 404
    assert heir.get(path).status_code == 200
    rows = heir.get(f"{path}/members").json()["members"]
    assert [m["member_id"] for m in rows] == [cast.member.project]
    assert cast.member.get(path).status_code == 200
