"""Alembic environment: the URL comes from the application's configuration."""

from alembic import context

import hotline.models  # noqa: F401  (registers every table)
from hotline.db import Base, make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_offline():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection):
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild a SQLite table by copying it and dropping the old one,
        # which enforced foreign keys forbid while other tables reference it. The pragma only
        # works outside a transaction, hence the driver's own connection, before any BEGIN.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.connection.driver_connection.execute(
            "PRAGMA foreign_key_check"
        ).fetchall()
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
        if broken:
            raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
