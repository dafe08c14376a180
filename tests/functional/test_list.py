"""GET /v2/images: filters and operators, sorting, paging by `next` links, errors, and which
images each caller's list holds (glance-api.md §8, glance-master-notes §4).

The server is shared by the whole session, so each test gives its images a property
`batch=<random>` and lists with that filter (itself an extra-property match under test).
"""
import operator
import time
import uuid
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from tests.support.server import ApiClient

SCHEMA = "/v2/schemas/images"
ISO = "%Y-%m-%dT%H:%M:%SZ"


@pytest.fixture
def batch():
    return uuid.uuid4().hex


def create(client, batch, **body):
    return client.create_image(batch=batch, **body)


def get_list(client, params):
    response = client.get("/v2/images", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def names(client, params):
    return [image["name"] for image in get_list(client, params)["images"]]


def name_set(client, batch, **params):
    return set(names(client, {"batch": batch, **params}))


def bad_request(client, query):
    """The message of the 400 answer to GET /v2/images?<query>."""
    response = client.get(f"/v2/images?{query}")
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.endswith("<br /><br />\n\n\n")
    return message.removesuffix("<br /><br />\n\n\n")


def upload(client, image, data):
    response = client.put(f"/v2/images/{image['id']}/file", data=data,
                          headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 204, response.text
    return client.get(f"/v2/images/{image['id']}").json()


def share(owner, image, member, status=None):
    added = owner.post(f"/v2/images/{image['id']}/members", json={"member": member.project})
    assert added.status_code == 200, added.text
    if status is not None:
        answered = member.put(f"/v2/images/{image['id']}/members/{member.project}",
                              json={"status": status})
        assert answered.status_code == 200, answered.text


def patch(client, image, path, value):
    response = client.patch(f"/v2/images/{image['id']}",
                            [{"op": "replace", "path": path, "value": value}])
    assert response.status_code == 200, response.text


def walk(client, params, limit):
    """Follow `next` links from the first page; the pages' image ids."""
    pages = []
    body = get_list(client, {**params, "limit": limit})
    while True:
        pages.append([image["id"] for image in body["images"]])
        assert ("next" in body) == (len(body["images"]) == limit)
        if "next" not in body:
            return pages
        response = client.get(body["next"])
        assert response.status_code == 200, response.text
        body = response.json()


def rank(value):
    """NULL below every value, as the server sorts."""
    return value is not None, value


def in_order(first, second, order):
    for key, direction in order:
        if rank(first[key]) != rank(second[key]):
            return (rank(first[key]) < rank(second[key])) == (direction == "asc")
    return True


# -- the list document and its links ---------------------------------------------------------

def test_listed_image_is_the_same_document_as_get(project_client, batch):
    client = project_client()
    image = create(client, batch, name="shown", tags=["t1", "t2"], os_distro="cirros")
    body = get_list(client, {"batch": batch})
    assert list(body) == ["images", "first", "schema"]
    assert body["first"] == f"/v2/images?batch={batch}"
    assert body["schema"] == SCHEMA
    assert body["images"] == [client.get(f"/v2/images/{image['id']}").json()]
    assert get_list(client, None)["first"] == "/v2/images"


def test_links_rebuild_the_query_with_marker_last(project_client, batch):
    client = project_client()
    extra = {"x y": "/~*"}
    ids = [create(client, batch, name=name, **extra)["id"] for name in ("a", "b", "c")]
    query = f"limit=2&sort=name:asc&x%20y=%2F~%2A&batch={batch}"
    first = f"/v2/images?limit=2&sort=name%3Aasc&x+y=%2F~%2A&batch={batch}"
    page = client.get(f"/v2/images?{query}").json()
    assert [image["name"] for image in page["images"]] == ["a", "b"]
    assert page["first"] == first
    assert page["next"] == f"{first}&marker={ids[1]}"
    last = client.get(f"/v2/images?marker={ids[1]}&{query}").json()
    assert [image["name"] for image in last["images"]] == ["c"]
    assert last["first"] == first
    assert "next" not in last


def test_next_keeps_repeated_tags_so_later_pages_use_the_same_filter(project_client, batch):
    client = project_client()
    for name in ("a", "b", "c"):
        create(client, batch, name=name, tags=["x", "y"])
    create(client, batch, name="only-y", tags=["y"])
    page = get_list(client, [("batch", batch), ("tag", "x"), ("tag", "y"), ("limit", 2),
                             ("sort", "name:asc")])
    assert page["first"] == f"/v2/images?batch={batch}&tag=x&tag=y&limit=2&sort=name%3Aasc"
    rest = client.get(page["next"]).json()
    assert [image["name"] for image in rest["images"]] == ["c"]


def test_limit_zero_exact_pages_and_above_the_cap(project_client, batch):
    client = project_client()
    for name in ("a", "b"):
        create(client, batch, name=name)
    empty = get_list(client, {"batch": batch, "limit": 0})
    assert empty == {"images": [], "first": f"/v2/images?batch={batch}&limit=0",
                     "schema": SCHEMA}
    assert len(get_list(client, {"batch": batch, "limit": 5000})["images"]) == 2
    assert walk(client, {"batch": batch}, 2)[1] == []
    assert "next" not in get_list(client, {"batch": f"none-{batch}"})


def test_default_limit_and_cap_come_from_the_configuration(make_server, batch):
    client = ApiClient(make_server("sqlite", {"DEFAULT": {"limit_param_default": 2,
                                                          "api_limit_max": 3}}),
                       project="limits")
    for name in "abcd":
        create(client, batch, name=name)
    default = get_list(client, {"batch": batch})
    assert len(default["images"]) == 2 and "next" in default
    capped = get_list(client, {"batch": batch, "limit": 10})
    assert len(capped["images"]) == 3 and "next" in capped


# -- sorting and paging ------------------------------------------------------------------------

SORTS = [
    ({}, [("created_at", "desc")]),
    ({"sort": "name:asc"}, [("name", "asc")]),
    ({"sort": "name"}, [("name", "desc")]),
    ({"sort_key": "name", "sort_dir": "asc"}, [("name", "asc")]),
    ({"sort_key": "name"}, [("name", "desc")]),
    ({"sort": "disk_format:asc,name:asc"}, [("disk_format", "asc"), ("name", "asc")]),
    ({"sort": "size:desc,name"}, [("size", "desc"), ("name", "desc")]),
    ({"sort": "container_format:desc,id:asc"}, [("container_format", "desc"), ("id", "asc")]),
    ({"sort_key": "status", "sort_dir": "asc"}, [("status", "asc")]),
    ({"sort": "updated_at:asc"}, [("updated_at", "asc")]),
    ({"sort": "id:desc"}, [("id", "desc")]),
]


def test_pages_follow_the_sort_without_skipping_or_repeating(project_client, batch):
    """Duplicate and NULL sort values, in both directions, across pages of 2 and 3."""
    client = project_client()
    specs = [("a", "raw", "bare"), (None, "qcow2", None), ("a", None, "ovf"),
             ("b", "raw", None), (None, None, "bare"), ("c", "qcow2", "bare"), ("a", "iso", "ovf")]
    created = [create(client, batch, name=name, disk_format=disk, container_format=container)
               for name, disk, container in specs]
    upload(client, created[0], b"z" * 3)
    upload(client, created[5], b"z" * 7)
    for params, order in SORTS:
        full = get_list(client, {"batch": batch, **params, "limit": 100})["images"]
        assert len(full) == len(specs)
        assert all(in_order(a, b, order) for a, b in pairwise(full)), params
        for limit in (2, 3):
            pages = walk(client, {"batch": batch, **params}, limit)
            assert sum(pages, []) == [image["id"] for image in full], (params, limit)


def test_null_names_sort_first_ascending_and_last_descending(project_client, batch):
    client = project_client()
    for name in ("b", None, "a"):
        create(client, batch, name=name)
    assert names(client, {"batch": batch, "sort": "name:asc"}) == [None, "a", "b"]
    assert names(client, {"batch": batch, "sort": "name:desc"}) == ["b", "a", None]


@pytest.fixture(scope="module")
def timeline(server):
    """Three images named alike, created a second apart, so their creation times differ."""
    client = ApiClient(server, project=f"p-{uuid.uuid4().hex[:8]}")
    batch = uuid.uuid4().hex
    images = []
    for number in range(3):
        if number:
            time.sleep(1.05)
        images.append(create(client, batch, name="same", min_ram=number))
    return client, batch, images


@pytest.mark.parametrize("params, oldest_first", [
    ({}, False),
    ({"sort_key": "name", "sort_dir": "asc"}, True),
    ({"sort": "name:asc"}, True),
    ({"sort": "name:asc,status:asc"}, False),
    ({"sort_key": ["name", "status"], "sort_dir": "asc"}, True),
    ({"sort_key": ["name", "status"], "sort_dir": ["asc", "asc"]}, False),
])
def test_created_at_and_id_break_ties_in_the_only_direction_given(timeline, params,
                                                                  oldest_first):
    client, batch, images = timeline
    listed = get_list(client, {"batch": batch, **params})["images"]
    ids = [image["id"] for image in images]
    assert [image["id"] for image in listed] == (ids if oldest_first else ids[::-1])


@pytest.mark.parametrize("op, compare", [
    ("eq", operator.eq), ("neq", operator.ne), ("gt", operator.gt), ("gte", operator.ge),
    ("lt", operator.lt), ("lte", operator.le)])
def test_time_filters(timeline, op, compare):
    client, batch, images = timeline
    pivot = images[1]["created_at"]
    for column in ("created_at", "updated_at"):
        expected = {image["id"] for image in images if compare(image[column], pivot)}
        listed = get_list(client, {"batch": batch, column: f"{op}:{pivot}"})["images"]
        assert {image["id"] for image in listed} == expected


def test_time_filter_forms(timeline):
    client, batch, images = timeline
    pivot = images[1]["created_at"]
    in_zone = (datetime.strptime(pivot, ISO) + timedelta(hours=2)).strftime(
        "%Y-%m-%dT%H:%M:%S+02:00")

    def ids(**params):
        return [image["id"] for image in get_list(client, {"batch": batch, **params})["images"]]

    assert ids(created_at=pivot) == [images[1]["id"]]
    assert ids(created_at=f"gte:{in_zone}") == [images[2]["id"], images[1]["id"]]
    assert ids(created_at=f"lt:{pivot.replace('T', ' ')}") == [images[0]["id"]]
    assert len(ids(created_at="gt:2020")) == 3
    assert ids(created_at="lt:2020-1-5") == []
    assert ids(updated_at="lt:20200105") == []
    assert ids(min_ram_min="1", min_ram_max="1") == [images[1]["id"]]


@pytest.mark.parametrize("query, message", [
    ("sort_key=min_ram", "Invalid sort key: min_ram. It must be one of the following: name, "
                         "status, container_format, disk_format, size, id, created_at, "
                         "updated_at."),
    ("sort=", "Invalid sort key: . It must be one of the following: name, status, "
              "container_format, disk_format, size, id, created_at, updated_at."),
    ("sort=name:up", "Invalid sort direction: up"),
    ("sort=name:asc:x", "Invalid sort direction: asc:x"),
    ("sort_key=name&sort_dir=up", "Invalid sort direction: up"),
    ("sort=name:asc&sort_key=id", "Old and new sorting syntax cannot be combined"),
    ("sort_dir=asc&sort=name", "Old and new sorting syntax cannot be combined"),
    ("sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
     "Number of sort dirs does not match the number of sort keys"),
    ("sort_dir=asc&sort_dir=desc", "Number of sort dirs does not match the number of sort keys"),
    ("limit=-1", "limit param must be positive"),
    ("limit=abc", "limit param must be an integer"),
    ("limit=1.5", "limit param must be an integer"),
    ("limit=", "limit param must be an integer"),
    ("name=foo:bar", "Unable to filter by unknown operator 'foo'."),
    ("name=gte:a", "Unable to filter by unknown operator 'gte'."),
    ("status=neq:active", "Unable to filter by unknown operator 'neq'."),
    ('name=in:a"b', 'Invalid filter value a"b. There is no comma before opening quotation '
                    'mark.'),
    ('name=in:"a"b', 'Invalid filter value "a"b. There is no comma after closing quotation '
                     'mark.'),
    ('name=in:"a', 'Invalid filter value "a. The quote is not closed.'),
    ("created_at=gt:bad", 'Bad "created_at" query filter format. Use ISO 8601 DateTime '
                          'notation.'),
    ("updated_at=lt:invalid_value", 'Bad "updated_at" query filter format. Use ISO 8601 '
                                    'DateTime notation.'),
    ("created_at=202001", 'Bad "created_at" query filter format. Use ISO 8601 DateTime '
                          'notation.'),
    ("created_at=2020-13-01", 'Bad "created_at" query filter format. Use ISO 8601 DateTime '
                              'notation.'),
    ("created_at=", 'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.'),
    ("created_at=foo:2020", "Unable to filter on a unknown operator."),
    ("size_min=gte:5", "Unable to filter on a range with a non-numeric value."),
    ("size_max=abc", "Unable to filter on a range with a non-numeric value."),
    ("virtual_size_min=", "Unable to filter on a range with a non-numeric value."),
    ("min_disk_max=x", "Unable to filter on a range with a non-numeric value."),
    ("protected=True", "Invalid value 'True' for 'protected' filter. Valid values are 'true' "
                       "or 'false'."),
    ("os_hidden=Maybe", "Invalid value 'maybe' for 'os_hidden' filter. Valid values are "
                        "'true' or 'false'."),
    ("visibility=bogus", "Invalid visibility value: bogus"),
    ("member_status=bogus", "Invalid status: bogus"),
    ("member_status=", "Invalid status: "),
    ("changes-since=2020-01-01T00:00:00Z", 'The "changes-since" filter is no longer available '
                                           'on v2.'),
    ("changes-since=", 'The "changes-since" filter is no longer available on v2.'),
    ("name=%FF", "Error decoding your request. Either the URL or the request body contained "
                 "characters that could not be decoded by Glance"),
])
def test_bad_queries_are_400_with_glances_message(project_client, query, message):
    assert bad_request(project_client(), query) == message


# -- filters -----------------------------------------------------------------------------------

def test_exact_filters_on_columns_and_properties(project_client, batch):
    client = project_client()
    alpha = create(client, batch, name="alpha", disk_format="qcow2", container_format="bare",
                   min_ram=512, min_disk=10, protected=True, os_distro="debian")
    create(client, batch, name="beta", disk_format="raw", container_format="ovf",
           os_distro="ubuntu", os_version="22")
    create(client, batch, name="gamma", disk_format="iso", container_format="bare",
           os_distro="debian", os_version="12")
    everything = {"alpha", "beta", "gamma"}
    cases = [
        ({}, everything),
        ({"name": "alpha"}, {"alpha"}),
        ({"name": "eq:beta"}, {"beta"}),
        ({"name": ""}, set()),
        ({"id": alpha["id"]}, {"alpha"}),
        ({"status": "queued"}, everything),
        ({"status": "bogus"}, set()),
        ({"status": "killed"}, set()),
        ({"disk_format": "raw"}, {"beta"}),
        ({"container_format": "bare"}, {"alpha", "gamma"}),
        ({"owner": client.project}, everything),
        ({"owner": "someone-else"}, set()),
        ({"min_ram": "512"}, {"alpha"}),
        ({"min_disk": "10"}, {"alpha"}),
        ({"min_ram": "abc"}, set()),
        ({"min_ram": "99999999999999999999999"}, set()),
        ({"min_ram_min": "1"}, {"alpha"}),
        ({"min_ram_max": "0"}, {"beta", "gamma"}),
        ({"min_ram_max": "99999999999999999999999"}, everything),
        ({"protected": "true"}, {"alpha"}),
        ({"protected": "false"}, {"beta", "gamma"}),
        ({"os_distro": "debian"}, {"alpha", "gamma"}),
        ({"os_distro": "debian", "os_version": "12"}, {"gamma"}),
        ({"os_version": "7"}, set()),
        ({"os_distro": "in:debian"}, set()),
        ({"owner": f"in:{client.project}"}, set()),
        ({"checksum": "0" * 32}, set()),
        ({"os_hash_value": "0" * 128}, set()),
        ({"size": "0"}, set()),
        ({"virtual_size": "0"}, set()),
        ({"size_max": "99"}, set()),
        ({"visibility": ""}, set()),
        ({"deleted": "true"}, everything),
    ]
    for params, expected in cases:
        assert name_set(client, batch, **params) == expected, params


def test_filters_on_uploaded_data(project_client, batch):
    client = project_client()
    formats = {"disk_format": "raw", "container_format": "bare"}
    small = upload(client, create(client, batch, name="small", **formats), b"s" * 5)
    big = upload(client, create(client, batch, name="big", **formats), b"b" * 50)
    create(client, batch, name="empty", **formats)
    cases = [
        ({"size": "5"}, {"small"}),
        ({"size_min": "6"}, {"big"}),
        ({"size_max": "5"}, {"small"}),
        ({"size_min": "5", "size_max": "50"}, {"small", "big"}),
        ({"size_min": "51"}, set()),
        ({"size_min": "99999999999999999999999"}, set()),
        ({"size_max": "99999999999999999999999"}, {"small", "big"}),
        ({"checksum": small["checksum"]}, {"small"}),
        ({"os_hash_value": big["os_hash_value"]}, {"big"}),
        ({"os_hash_algo": big["os_hash_algo"]}, {"small", "big"}),
        ({"status": "active"}, {"small", "big"}),
        ({"status": "queued"}, {"empty"}),
        ({"status": "in:queued,active"}, {"small", "big", "empty"}),
    ]
    for params, expected in cases:
        assert name_set(client, batch, **params) == expected, params


def test_in_operator_and_quoted_values(project_client, batch):
    client = project_client()
    comma = create(client, batch, name="a,b", disk_format="raw", container_format="bare")
    create(client, batch, name="c", disk_format="qcow2", container_format="ovf")
    colon = create(client, batch, name="d:e", disk_format="iso")
    everything = {"a,b", "c", "d:e"}
    cases = [
        ({"name": 'in:"a,b",c'}, {"a,b", "c"}),
        ({"name": "in:a,b"}, set()),
        ({"name": "in:c,zzz,"}, {"c"}),
        ({"name": "in:"}, set()),
        ({"name": "eq:d:e"}, {"d:e"}),
        ({"id": f"in:{comma['id']},{colon['id']}"}, {"a,b", "d:e"}),
        ({"status": "in:active,queued"}, everything),
        ({"disk_format": "in:raw,iso"}, {"a,b", "d:e"}),
        ({"container_format": "in:ovf"}, {"c"}),
    ]
    for params, expected in cases:
        assert name_set(client, batch, **params) == expected, params


def test_every_tag_is_required(project_client, batch):
    client = project_client()
    create(client, batch, name="both", tags=["x86", "64bit"])
    create(client, batch, name="one", tags=["x86"])
    create(client, batch, name="none")

    def tagged(*tags, **params):
        return set(names(client, [("batch", batch), *(("tag", t) for t in tags),
                                  *params.items()]))

    assert tagged("x86") == {"both", "one"}
    assert tagged("x86", "64bit") == {"both"}
    assert tagged(" 64bit ") == {"both"}
    assert tagged("x86", "nope") == set()
    assert tagged("x86", name="one") == {"one"}
    assert tagged("") == set()


def test_hidden_images_are_listed_only_on_request(project_client, batch):
    client = project_client()
    create(client, batch, name="seen")
    hidden = create(client, batch, name="hidden", os_hidden=True)
    assert name_set(client, batch) == {"seen"}
    assert name_set(client, batch, os_hidden="false") == {"seen"}
    assert name_set(client, batch, os_hidden="true") == {"hidden"}
    assert name_set(client, batch, os_hidden="TRUE") == {"hidden"}
    patch(client, hidden, "/os_hidden", False)
    assert name_set(client, batch) == {"seen", "hidden"}


def test_marker_must_be_an_image_the_caller_can_see(project_client, batch):
    client, other = project_client(), project_client()
    create(client, batch, name="mine")
    private = other.create_image(visibility="private")
    gone = create(client, batch, name="gone")
    assert client.delete(f"/v2/images/{gone['id']}").status_code == 204
    assert name_set(client, batch) == {"mine"}
    for marker in (str(uuid.uuid4()), "not-an-id", "", "x" * 300, private["id"], gone["id"]):
        assert bad_request(client, f"marker={marker}") == f"No image found with ID {marker}"
    community = create(other, batch, name="theirs", visibility="community")
    assert get_list(client, {"batch": batch, "marker": community["id"]})["first"] == (
        f"/v2/images?batch={batch}")


# -- who sees what -----------------------------------------------------------------------------

def test_non_admin_sees_public_own_and_asked_for_community(project_client, admin, batch):
    me, other = project_client(), project_client()
    for owner, prefix in ((me, "my"), (other, "their")):
        for visibility in ("private", "shared", "community"):
            create(owner, batch, name=f"{prefix}-{visibility}", visibility=visibility)
    create(admin, batch, name="public", visibility="public", owner=other.project)
    mine = {"my-private", "my-shared", "my-community"}
    assert name_set(me, batch) == mine | {"public"}
    assert name_set(me, batch, visibility="all") == mine | {"public", "their-community"}
    assert name_set(me, batch, visibility="community") == {"my-community", "their-community"}
    assert name_set(me, batch, visibility="private") == {"my-private"}
    assert name_set(me, batch, visibility="shared") == {"my-shared"}
    assert name_set(me, batch, visibility="public") == {"public"}


def test_members_see_shared_images_by_their_answer(project_client, batch):
    owner, me = project_client(), project_client()
    shared = {}
    for status in ("pending", "accepted", "rejected"):
        shared[status] = create(owner, batch, name=status, visibility="shared")
        share(owner, shared[status], me, None if status == "pending" else status)
    create(owner, batch, name="not-mine", visibility="shared")
    assert name_set(me, batch) == {"accepted"}
    assert name_set(me, batch, visibility="shared") == {"accepted"}
    assert name_set(me, batch, member_status="pending") == {"pending"}
    assert name_set(me, batch, member_status="rejected") == {"rejected"}
    assert name_set(me, batch, member_status="all") == {"pending", "accepted", "rejected"}
    assert name_set(me, batch, member_status="all", visibility="private") == set()
    patch(owner, shared["accepted"], "/visibility", "private")
    assert name_set(me, batch) == set()
    assert name_set(owner, batch) == {"pending", "accepted", "rejected", "not-mine"}


def test_admin_sees_everything_but_others_community_unless_asked(project_client, admin,
                                                                  batch):
    other = project_client()
    for visibility in ("private", "shared", "community"):
        create(other, batch, name=f"their-{visibility}", visibility=visibility)
    create(admin, batch, name="my-community", visibility="community")
    create(other, batch, name="hidden", os_hidden=True)
    listed = {"their-private", "their-shared", "my-community"}
    assert name_set(admin, batch) == listed
    assert name_set(admin, batch, member_status="rejected") == listed
    assert name_set(admin, batch, visibility="all") == listed | {"their-community"}
    assert name_set(admin, batch, visibility="community") == {"their-community",
                                                                "my-community"}
    assert name_set(admin, batch, visibility="shared") == {"their-shared"}
    assert name_set(admin, batch, os_hidden="true") == {"hidden"}


def test_owner_less_images_are_listed_only_for_admins(anon, project_client, admin, batch):
    orphan = create(anon, batch, name="orphan", visibility="private")
    create(anon, batch, name="orphan-community", visibility="community")
    assert orphan["owner"] is None
    member = project_client()
    assert member.get(f"/v2/images/{orphan['id']}").status_code == 200
    assert name_set(member, batch) == set()
    assert name_set(member, batch, visibility="all") == {"orphan-community"}
    assert name_set(admin, batch) == {"orphan"}
    assert name_set(anon, batch) == {"orphan"}
    assert name_set(anon, batch, visibility="community") == {"orphan-community"}
