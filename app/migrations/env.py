"""Alembic environment (Flask-Migrate's single-database template, plus a lock against concurrent upgrades)."""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import text

config = context.config
fileConfig(config.config_file_name)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
config.set_main_option("sqlalchemy.url", target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))

# Any constant shared by every release: two `flask db upgrade` running at once (a Job retried while its
# predecessor still runs, an operator by hand) apply the revisions one after the other, not both.
MIGRATION_LOCK_ID = 0x7461736B73  # "tasks"


def run_migrations_offline():
    """`flask db upgrade --sql`: prints the SQL instead of running it."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_db.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    with target_db.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_db.metadata,
            process_revision_directives=process_revision_directives,
            **current_app.extensions["migrate"].configure_args,
        )
        with context.begin_transaction():
            # Taken before Alembic reads alembic_version, released at commit (Postgres DDL is transactional).
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            # A migration waiting on a busy table would queue every API query behind it: give up and let the
            # Job retry instead.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
