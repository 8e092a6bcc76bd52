"""Alembic wiring: ``hotline db upgrade`` and friends run the scripts in ``migrations/``."""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url, revision="head"):
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url, revision):
    command.downgrade(alembic_config(database_url), revision)


def current(database_url):
    command.current(alembic_config(database_url), verbose=True)


def revision(database_url, message):
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
