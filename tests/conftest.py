"""Shared fixtures: databases (SQLite and PostgreSQL) and real glancelite servers.

Every functional test talks HTTP to `glancelite-api` (gunicorn) on a loopback port.
The `server` fixture is parametrised over the databases: SQLite always, PostgreSQL
when GLANCELITE_TEST_DATABASE_URL is set (a skip says why when it is not). Each test
run creates its own PostgreSQL database and drops it at the end.
"""
import os
import uuid

import pytest

from tests.support.databases import postgres_database, sqlite_url
from tests.support.s3 import S3Server, describe_store, s3_store_overrides
from tests.support.server import ApiClient, running_server

PG_ENV = "GLANCELITE_TEST_DATABASE_URL"
DATABASES = ["sqlite", "postgresql"]
STORES = ["file", "s3"]
# Small S3 parts and few threads, so that the data-path tests cross part boundaries.
S3_TEST_OPTIONS = {"s3_store_large_object_chunk_size": 8, "s3_store_thread_pools": 2}


@pytest.fixture(scope="session")
def database_url_factory(tmp_path_factory):
    """Returns a function making a fresh, empty database URL of the given kind."""
    made = []

    def make(kind):
        if kind == "sqlite":
            return sqlite_url(tmp_path_factory.mktemp("sqlite"))
        base = os.environ.get(PG_ENV)
        if not base:
            pytest.skip(f"PostgreSQL tests skipped: {PG_ENV} is not set "
                        f"(.ci/run sets it when PostgreSQL answers on 127.0.0.1)")
        database = postgres_database(base)
        made.append(database)
        return database.url

    yield make
    for database in made:
        database.drop()


@pytest.fixture(scope="session", params=DATABASES)
def server(request, database_url_factory, tmp_path_factory):
    """A glancelite-api with the sample configuration, on each database kind."""
    url = database_url_factory(request.param)
    with running_server(tmp_path_factory.mktemp("server"), url) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a loopback port, for the whole run (tests/support/s3.py)."""
    s3 = S3Server().start()
    yield s3
    s3.stop()


@pytest.fixture(scope="session", params=[(db, store) for store in STORES for db in DATABASES],
                ids=lambda param: "-".join(param))
def data_server(request, database_url_factory, tmp_path_factory):
    """Like `server`, on each database with each store: the filesystem and S3 (moto)."""
    kind, store = request.param
    url = database_url_factory(kind)
    s3 = bucket = overrides = None
    if store == "s3":
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.new_bucket()
        overrides = s3_store_overrides(s3, bucket, **S3_TEST_OPTIONS)
    with running_server(tmp_path_factory.mktemp("server"), url, overrides) as base_url:
        yield describe_store(base_url, store, s3, bucket)


@pytest.fixture
def make_server(request, database_url_factory, tmp_path_factory):
    """Start a server with configuration overrides: make_server(kind, {section: {k: v}});
    store="s3" makes it store images in a fresh bucket of the `s3_server`."""
    started = []

    def start(kind="sqlite", overrides=None, store="file"):
        url = database_url_factory(kind)
        s3 = bucket = None
        if store == "s3":
            s3 = request.getfixturevalue("s3_server")
            bucket = s3.new_bucket()
            overrides = s3_store_overrides(s3, bucket, overrides, **S3_TEST_OPTIONS)
        context = running_server(tmp_path_factory.mktemp("server"), url, overrides)
        base = context.__enter__()
        started.append(context)
        return describe_store(base, store, s3, bucket)

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.fixture
def admin(server):
    """Client acting as an admin of a fresh project."""
    return ApiClient(server, project=f"admin-{uuid.uuid4().hex[:8]}", roles=("admin", "member"))


@pytest.fixture
def project_client(server):
    """Factory: a member-role client of a fresh (or given) project."""
    def make(project=None, roles=("member",)):
        return ApiClient(server, project=project or f"p-{uuid.uuid4().hex[:8]}", roles=roles)
    return make


@pytest.fixture
def anon(server):
    """Client sending no identity headers (Glance's unauthenticated admin context)."""
    return ApiClient(server)
