"""Alembic environment (Flask-Migrate's single-database template, plus a lock against concurrent upgrades)."""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from tasks_api.release_migrate import is_history_table, lock_for_migration

config = context.config
fileConfig(config.config_file_name)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
config.set_main_option("sqlalchemy.url", target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))


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

    def run(connection):
        context.configure(
            connection=connection,
            target_metadata=target_db.metadata,
            process_revision_directives=process_revision_directives,
            # schema_release_history is `flask release-migrate`'s bookkeeping, not the models'.
            include_name=lambda name, type_, parents: not is_history_table(name, type_, parents),
            **current_app.extensions["migrate"].configure_args,
        )
        # Inside `flask release-migrate`'s transaction this opens none: its commit covers the revisions too.
        with context.begin_transaction():
            # Taken before Alembic reads alembic_version, released at commit (Postgres DDL is transactional), and
            # shared by every release: two upgrades running at once (a Job retried while its predecessor still
            # runs, an operator by hand) apply the revisions one after the other, not both.
            lock_for_migration(connection)
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
    else:
        with target_db.engine.connect() as connection:
            run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
