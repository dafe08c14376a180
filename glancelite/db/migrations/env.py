"""Alembic environment: runs migrations on the connection handed over by migrate.py."""
from alembic import context

from glancelite.db.models import db

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=db.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
