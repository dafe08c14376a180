"""Image members: adding, listing, reading, answering and removing, caller by caller."""
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.server import ApiClient

MEMBER_KEYS = {"member_id", "image_id", "status", "created_at", "updated_at", "schema"}


def members_of(image):
    return f"/v2/images/{image['id']}/members"


def message(response):
    return response.json()["message"]


@pytest.fixture
def trio(project_client):
    """An owner with a shared image, one member project on it, and a stranger."""
    owner, member, stranger = project_client(), project_client(), project_client()
    image = owner.create_image(name="shared")
    added = owner.post(members_of(image), json={"member": member.project})
    assert added.status_code == 200, added.text
    return owner, member, stranger, image


def test_add_returns_a_pending_member_document(project_client):
    owner, member = project_client(), project_client()
    image = owner.create_image()
    response = owner.post(members_of(image), json={"member": member.project})
    assert response.status_code == 200
    doc = response.json()
    assert set(doc) == MEMBER_KEYS
    assert doc["member_id"] == member.project
    assert doc["image_id"] == image["id"]
    assert doc["status"] == "pending"
    assert doc["schema"] == "/v2/schemas/member"
    assert doc["created_at"] == doc["updated_at"]
    assert doc["created_at"].endswith("Z") and "." not in doc["created_at"]
    for reader in (owner, member):
        shown = reader.get(f"{members_of(image)}/{member.project}")
        assert shown.status_code == 200
        assert shown.json() == doc


@pytest.mark.parametrize("body, text", [
    ({}, "Member to be added not specified"),
    ({"member_id": "p"}, "Member to be added not specified"),
    ({"member": ""}, "Member can't be empty"),
    ({"member": None}, "Member can't be empty"),
    ({"member": 0}, "Member can't be empty"),
    ({"member": 5}, 'Expected a member in the form: {"member": "image_id"}'),
    ({"member": ["p"]}, 'Expected a member in the form: {"member": "image_id"}'),
    ([{"member": "p"}], 'Expected a member in the form: {"member": "image_id"}'),
    ({"member": "p" * 256}, "Member should not be greater than 255 characters."),
])
def test_add_rejects_bad_bodies_before_looking_at_the_image(project_client, body, text):
    owner, stranger = project_client(), project_client()
    image = owner.create_image()
    for caller in (owner, stranger):
        response = caller.post(members_of(image), json=body)
        assert response.status_code == 400, response.text
        assert text in message(response)
    assert owner.get(members_of(image)).json()["members"] == []


@pytest.mark.parametrize("raw, text", [
    (b"", "Body expected in request."),
    (b"{bad", "Malformed JSON in request body."),
    (b"5", "Unexpected body type. Expected list/dict."),
])
def test_add_rejects_malformed_json(project_client, raw, text):
    owner = project_client()
    image = owner.create_image()
    response = owner.post(members_of(image), data=raw,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert text in message(response)


def test_longest_member_id_and_odd_characters_round_trip(project_client):
    owner = project_client()
    image = owner.create_image()
    for member_id, in_url in (("m" * 255, "m" * 255), ("a/b", "a%2Fb"), ("é", "%C3%A9")):
        added = owner.post(members_of(image), json={"member": member_id})
        assert added.status_code == 200, added.text
        shown = owner.get(f"{members_of(image)}/{in_url}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["member_id"] == member_id


def test_duplicate_member_conflicts(trio):
    owner, member, _, image = trio
    again = owner.post(members_of(image), json={"member": member.project})
    assert again.status_code == 409
    assert message(again).startswith(
        f"Member {member.project} is duplicated for image {image['id']}")


def test_concurrent_adds_of_one_member_make_one_row(project_client):
    owner = project_client()
    image = owner.create_image()
    member_id = f"p-{uuid.uuid4().hex[:8]}"
    clients = [ApiClient(owner.base_url, project=owner.project) for _ in range(8)]
    with ThreadPoolExecutor(len(clients)) as pool:
        codes = sorted(pool.map(
            lambda c: c.post(members_of(image), json={"member": member_id}).status_code,
            clients))
    assert codes == [200] + [409] * 7
    assert [m["member_id"] for m in owner.get(members_of(image)).json()["members"]] == [member_id]


def test_owner_may_add_its_own_project_and_admin_any_project(project_client, admin):
    owner = project_client()
    image = owner.create_image()
    assert owner.post(members_of(image), json={"member": owner.project}).status_code == 200
    by_admin = admin.post(members_of(image), json={"member": "chosen-by-admin"})
    assert by_admin.status_code == 200
    listed = owner.get(members_of(image)).json()["members"]
    assert {m["member_id"] for m in listed} == {owner.project, "chosen-by-admin"}


def test_members_and_strangers_cannot_add(trio):
    _, member, stranger, image = trio
    by_member = member.post(members_of(image), json={"member": "friend"})
    assert by_member.status_code == 403
    assert message(by_member).startswith(f"Not allowed to create members for image {image['id']}.")
    by_stranger = stranger.post(members_of(image), json={"member": "friend"})
    assert by_stranger.status_code == 404
    assert message(by_stranger).startswith(f"Image {image['id']} not found.")


@pytest.mark.parametrize("visibility", ["private", "community", "public"])
def test_only_shared_images_have_members(project_client, admin, visibility):
    owner = project_client()
    maker = admin if visibility == "public" else owner
    image = maker.create_image(visibility=visibility, owner=owner.project)
    path = members_of(image)
    image_id = image["id"]
    for caller in (owner, admin):
        added = caller.post(path, json={"member": "someone"})
        assert added.status_code == 403
        assert message(added).startswith(f"Not allowed to create members for image {image_id}.")
        listed = caller.get(path)
        assert listed.status_code == 403
        assert message(listed).startswith(f"Not allowed to list members for image {image_id}: "
                                          f"Only shared images have members.")
        shown = caller.get(f"{path}/someone")
        assert shown.status_code == 404
        assert message(shown).startswith("Only shared images have members.")
        updated = caller.put(f"{path}/someone", json={"status": "accepted"})
        assert updated.status_code == 403
        assert message(updated).startswith(f"Not allowed to update members for image {image_id}.")
        deleted = caller.delete(f"{path}/someone")
        assert deleted.status_code == 403
        assert message(deleted).startswith(f"Not allowed to delete members for image {image_id}.")


def test_owner_and_admin_list_everyone_a_member_only_itself(trio, project_client, admin):
    owner, member, stranger, image = trio
    other = project_client()
    assert owner.post(members_of(image), json={"member": other.project}).status_code == 200
    listed = owner.get(members_of(image))
    assert listed.status_code == 200
    assert listed.json()["schema"] == "/v2/schemas/members"
    everyone = {member.project, other.project}
    assert {m["member_id"] for m in listed.json()["members"]} == everyone
    assert {m["member_id"] for m in admin.get(members_of(image)).json()["members"]} == everyone
    own = member.get(members_of(image)).json()["members"]
    assert [(m["member_id"], m["image_id"]) for m in own] == [(member.project, image["id"])]
    hidden = stranger.get(members_of(image))
    assert hidden.status_code == 404
    assert message(hidden).startswith(f"Image {image['id']} not found.")


def test_reading_one_member(trio, project_client):
    owner, member, stranger, image = trio
    other = project_client()
    assert owner.post(members_of(image), json={"member": other.project}).status_code == 200
    not_yours = member.get(f"{members_of(image)}/{other.project}")
    assert not_yours.status_code == 404
    assert message(not_yours).startswith(
        f"{other.project} not found in the member list of the image {image['id']}.")
    missing = owner.get(f"{members_of(image)}/nobody")
    assert missing.status_code == 404
    assert message(missing).startswith(
        f"nobody not found in the member list of the image {image['id']}.")
    hidden = stranger.get(f"{members_of(image)}/{member.project}")
    assert hidden.status_code == 404
    assert message(hidden).startswith(f"Image {image['id']} not found.")
    malformed = owner.get("/v2/images/not-an-id/members/x")
    assert malformed.status_code == 404
    assert message(malformed).startswith("Image not-an-id not found.")


def test_member_answers_and_the_answer_sticks(trio):
    owner, member, _, image = trio
    path = f"{members_of(image)}/{member.project}"
    before = member.get(path).json()
    time.sleep(1.1)  # timestamps have whole seconds
    answered = member.put(path, json={"status": "accepted", "ignored": True})
    assert answered.status_code == 200
    doc = answered.json()
    assert set(doc) == MEMBER_KEYS
    assert doc["status"] == "accepted"
    assert doc["created_at"] == before["created_at"]
    assert doc["updated_at"] > before["updated_at"]
    assert owner.get(path).json() == doc
    assert member.put(path, json={"status": "rejected"}).json()["status"] == "rejected"
    assert owner.get(path).json()["status"] == "rejected"


BAD_STATUS = 'Incorrect request: Status must be "pending", "accepted" or "rejected".'


@pytest.mark.parametrize("body, text", [
    ({}, "Status not specified"),
    ({"state": "accepted"}, "Status not specified"),
    ({"status": "bogus"}, BAD_STATUS),
    ({"status": None}, BAD_STATUS),
    ({"status": ["accepted"]}, BAD_STATUS),
    ([], 'Expected a status in the form: {"status": "status"}'),
])
def test_member_status_errors(trio, body, text):
    owner, member, _, image = trio
    path = f"{members_of(image)}/{member.project}"
    response = member.put(path, json=body)
    assert response.status_code == 400
    assert text in message(response)
    assert owner.get(path).json()["status"] == "pending"


def test_only_the_member_itself_or_an_admin_answers(trio, project_client, admin):
    owner, member, stranger, image = trio
    other = project_client()
    assert owner.post(members_of(image), json={"member": other.project}).status_code == 200
    path = f"{members_of(image)}/{member.project}"
    by_owner = owner.put(path, json={"status": "accepted"})
    assert by_owner.status_code == 403
    assert message(by_owner).startswith(f"Not allowed to update members for image {image['id']}.")
    by_other_member = other.put(path, json={"status": "accepted"})
    assert by_other_member.status_code == 404
    assert message(by_other_member).startswith(
        f"{member.project} not found in the member list of the image {image['id']}.")
    assert stranger.put(path, json={"status": "accepted"}).status_code == 404
    assert owner.get(path).json()["status"] == "pending"
    by_admin = admin.put(path, json={"status": "rejected"})
    assert by_admin.status_code == 200
    assert by_admin.json()["status"] == "rejected"
    missing = admin.put(f"{members_of(image)}/nobody", json={"status": "accepted"})
    assert missing.status_code == 404
    assert message(missing).startswith(
        f"nobody not found in the member list of the image {image['id']}.")


def test_owner_removes_a_member_who_loses_access_at_once(trio):
    owner, member, _, image = trio
    path = f"{members_of(image)}/{member.project}"
    assert member.get(f"/v2/images/{image['id']}").status_code == 200
    by_member = member.delete(path)
    assert by_member.status_code == 403
    assert message(by_member).startswith(f"Not allowed to delete members for image {image['id']}.")
    removed = owner.delete(path)
    assert removed.status_code == 204
    assert removed.content == b""
    assert member.get(f"/v2/images/{image['id']}").status_code == 404
    assert member.get(path).status_code == 404
    assert owner.get(members_of(image)).json()["members"] == []
    again = owner.delete(path)
    assert again.status_code == 404
    assert message(again).startswith(
        f"{member.project} not found in the member list of the image {image['id']}.")
    readded = owner.post(members_of(image), json={"member": member.project})
    assert readded.status_code == 200
    assert readded.json()["status"] == "pending"


def test_admin_removes_members_of_any_shared_image(trio, admin):
    owner, member, _, image = trio
    assert admin.delete(f"{members_of(image)}/{member.project}").status_code == 204
    assert owner.get(members_of(image)).json()["members"] == []


def test_deleting_the_image_takes_its_members_along(trio, admin):
    owner, member, _, image = trio
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    for caller in (member, owner, admin):
        gone = caller.get(members_of(image))
        assert gone.status_code == 404
        assert message(gone).startswith(f"Image {image['id']} not found.")


@pytest.mark.parametrize("method, suffix", [("GET", ""), ("GET", "/{m}"), ("DELETE", "/{m}")])
def test_bodiless_routes_refuse_a_body(trio, method, suffix):
    owner, member, _, image = trio
    path = members_of(image) + suffix.format(m=member.project)
    response = owner.request(method, path, json={"member": member.project})
    assert response.status_code == 400
    assert message(response).startswith("A body is not expected with this request.")
    assert owner.get(f"{members_of(image)}/{member.project}").status_code == 200


@pytest.mark.parametrize("suffix, allowed", [("", "GET, POST"), ("/x", "GET, PUT, DELETE")])
def test_other_methods_are_not_allowed(trio, suffix, allowed):
    owner, _, _, image = trio
    response = owner.patch(members_of(image) + suffix, [])
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == set(allowed.split(", "))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_member_quota_holds_under_concurrent_adds(make_server, kind):
    base = make_server(kind, {"DEFAULT": {"image_member_quota": 3, "workers": 4}})
    owner = ApiClient(base, project=f"p-{uuid.uuid4().hex[:8]}")
    clients = [ApiClient(base, project=owner.project) for _ in range(10)]
    with ThreadPoolExecutor(len(clients)) as pool:
        for _ in range(5):  # the race between two last free places is rare: try a few times
            path = members_of(owner.create_image())
            responses = list(pool.map(
                lambda pair, path=path: pair[1].post(path, json={"member": f"m{pair[0]}"}),
                enumerate(clients)))
            assert sorted(r.status_code for r in responses) == [200] * 3 + [413] * 7
            assert len(owner.get(path).json()["members"]) == 3
    refused = next(r for r in responses if r.status_code == 413)
    image_id = path.split("/")[3]
    assert message(refused).startswith(
        f"Image member limit exceeded for image {image_id}: The limit has been exceeded on "
        f"the number of allowed image members for this image. Attempted: 4, Maximum: 3")
    first = owner.get(path).json()["members"][0]["member_id"]
    assert owner.delete(f"{path}/{first}").status_code == 204
    assert owner.post(path, json={"member": "latecomer"}).status_code == 200
