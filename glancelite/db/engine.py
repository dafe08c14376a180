"""Engine options per database: SQLite needs WAL and a busy timeout for several workers."""
import os

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url


def engine_options(url):
    """Keyword arguments for create_engine (also given to Flask-SQLAlchemy)."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 30}}
    options = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    if backend == "postgresql":
        # Our queries return a page of rows: starting parallel workers costs 8-15 ms each
        # time, far more than the query, and grows with the table (bench/list_scale.py).
        options["connect_args"] = {"options": "-c max_parallel_workers_per_gather=0"}
    return options


def _sqlite_file(url):
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return parsed
    return None


def resolve_url(url):
    """Make a relative SQLite path absolute (against the working directory) and create
    its directory, so a fresh checkout just works and every tool opens the same file."""
    parsed = _sqlite_file(url)
    if parsed is None:
        return url
    path = os.path.abspath(parsed.database)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return parsed.set(database=path).render_as_string(hide_password=False)


def configure_sqlite(engine):
    """WAL lets readers run beside one writer; NORMAL sync is crash-safe in WAL mode."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def make_engine(url):
    url = resolve_url(url)
    engine = create_engine(url, **engine_options(url))
    configure_sqlite(engine)
    return engine
