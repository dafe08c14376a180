"""Schema management: `glancelite-manage db sync|version` (Alembic, programmatic).

Several API hosts may start at once against one PostgreSQL; an advisory lock makes
their migrations run one after another instead of racing.
"""
from contextlib import contextmanager
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from glancelite.db.engine import make_engine

_PG_MIGRATION_LOCK = 7_364_201_977  # any constant shared by all glancelite processes


def _alembic_config(connection):
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("glancelite.db") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _migration_lock(connection):
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
        connection.commit()


def sync(url):
    """Bring the schema at `url` up to the newest migration."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection, _migration_lock(connection):
            command.upgrade(_alembic_config(connection), "head")
            connection.commit()
    finally:
        engine.dispose()


def current_version(url):
    """(revision the database is at or None, newest revision available)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
            return current, head
    finally:
        engine.dispose()
