"""Alembic environment: migrations always run on a connection mtctl hands over."""

from alembic import context

from mtctl.store.tables import metadata

connection = context.config.attributes["connection"]
if connection.dialect.name == "sqlite":
    # Batch mode rebuilds a table as _alembic_tmp_X and renames it back to X; SQLite would
    # otherwise re-check every trigger and view that reads X while X does not exist yet (the
    # location triggers read node), and fail. The names they use are right after the rename.
    connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
