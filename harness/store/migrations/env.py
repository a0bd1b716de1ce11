"""Alembic environment: the harness passes its open connection in config.attributes["connection"]."""
from alembic import context

from harness.store._schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through harness.store.Store(url).upgrade(), which supplies the connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
