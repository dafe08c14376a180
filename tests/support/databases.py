"""Per-run databases for tests: an SQLite file, or a PostgreSQL database made and dropped."""
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def sqlite_url(directory):
    return f"sqlite:///{directory}/glancelite.db"


class PostgresDatabase:
    def __init__(self, admin_url, name):
        self.admin_url = admin_url
        self.name = name
        self.url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def _execute(self, statement):
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def create(self):
        self._execute(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self):
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def postgres_database(admin_url):
    """A new empty database on the server of `admin_url`, unique to this call."""
    return PostgresDatabase(admin_url, f"glancelite_test_{uuid.uuid4().hex[:12]}").create()
