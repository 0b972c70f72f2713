"""`flask release-migrate`: the migration Job's command, `flask db upgrade` that lets an image rollback through.

Each release records the revision graph it ships in `schema_release_history`, in the transaction (and under the
advisory lock) of its upgrade. An older release run again after a rollback finds the database at a revision it
does not ship, looks it up there, and if that revision descends from its own head, the schema already contains
everything the older code needs: it leaves the schema alone and succeeds. A revision no release recorded (a
tutorial database's, a hand-made one) still fails, as `flask db upgrade` would. See docs/app.md, "Migrations".
"""
from typing import Iterable, Mapping, Optional, Sequence

import click
import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import to_tuple
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.dialects.postgresql import ARRAY, insert

# The lock id and the history table are shared by every release (an old release reads what a newer one wrote,
# and waits on the lock a newer one holds): never change either.
MIGRATION_LOCK_ID = 0x7461736B73  # "tasks"
HISTORY_TABLE = "schema_release_history"
STAMP_STEP = 'docs/app.md, "Adopting a tutorial database (one-time stamp)"'

# Kept out of the models' metadata: it is bookkeeping, like alembic_version, not part of any revision.
history = sa.Table(
    HISTORY_TABLE,
    sa.MetaData(),
    sa.Column("revision", sa.Text, primary_key=True),
    # A merge revision has several; a base revision none.
    sa.Column("down_revisions", ARRAY(sa.Text), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

Graph = Mapping[str, Sequence[str]]


def lock_for_migration(connection: sa.engine.Connection) -> None:
    """Serialises migrations until the transaction ends; to be called before alembic_version is read."""
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    # A migration waiting on a busy table would queue every API query behind it: give up and let the Job retry.
    connection.execute(sa.text("SET LOCAL lock_timeout = '10s'"))


def is_history_table(name: Optional[str], type_: str, parent_names: Mapping[str, Optional[str]]) -> bool:
    """Alembic's include_name: autogenerate must not propose dropping the history table."""
    return type_ == "table" and name == HISTORY_TABLE


def ancestry(revisions: Iterable[str], graph: Graph) -> set[str]:
    """The revisions and every ancestor `graph` (revision -> down revisions) can trace."""
    seen: set[str] = set()
    todo = list(revisions)
    while todo:
        revision = todo.pop()
        if revision not in seen:
            seen.add(revision)
            todo.extend(graph.get(revision, ()))
    return seen


def rollback_message(current: Sequence[str], head: str, release: Graph, recorded: Graph) -> Optional[str]:
    """None when this release can upgrade the database; the log line when it is a rollback to leave alone.

    Raises click.ClickException when the database's revision is neither this release's nor a recorded
    descendant of its head.
    """
    unknown = [r for r in current if r not in release]
    if not unknown:
        return None
    at = ", ".join(current)
    untraced = [r for r in unknown if r not in recorded]
    if untraced:
        raise click.ClickException(
            f"database is at revision {at}; {', '.join(untraced)} is neither in this release's migrations "
            f"(head {head}) nor recorded by any release in {HISTORY_TABLE}, so it is not a rollback. A database "
            f"set up by the tutorial's `flask db init/migrate` must be stamped once: see {STAMP_STEP}."
        )
    if head not in ancestry(current, {**recorded, **release}):
        raise click.ClickException(
            f"database is at revision {at}, recorded in {HISTORY_TABLE} but not descended from this release's "
            f"head {head}: not a rollback, and this release's schema may be missing. Check alembic_version and "
            f"{HISTORY_TABLE}; see {STAMP_STEP}."
        )
    return f"database is at {at}, newer than this release's head {head}: a rollback; the schema is left as it is"


@click.command("release-migrate")
@with_appcontext
def release_migrate() -> None:
    """Upgrade to this release's head and record its revisions; on a rollback, leave the schema alone."""
    migrate = current_app.extensions["migrate"]
    config = migrate.migrate.get_config()
    script = ScriptDirectory.from_config(config)
    heads = script.get_heads()
    if len(heads) != 1:
        raise click.ClickException(f"this release's migrations have {len(heads)} heads ({', '.join(heads)}); merge them into one")
    head = heads[0]
    release = {s.revision: to_tuple(s.down_revision, default=()) for s in script.walk_revisions()}

    with migrate.db.engine.connect() as connection, connection.begin():
        lock_for_migration(connection)
        current = MigrationContext.configure(connection, opts=dict(migrate.configure_args)).get_current_heads()
        has_history = connection.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": HISTORY_TABLE}).scalar()
        recorded = {r.revision: tuple(r.down_revisions) for r in connection.execute(sa.select(history))} if has_history else {}

        message = rollback_message(current, head, release, recorded)
        if message:
            click.echo(f"release-migrate: {message}", err=True)
            return
        if set(current) == {head}:
            click.echo(f"release-migrate: database is at this release's head {head}: nothing to upgrade", err=True)
        else:
            # env.py runs the revisions on this connection, inside this transaction (it re-takes the same lock).
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        history.create(connection, checkfirst=True)
        new = [{"revision": r, "down_revisions": list(d)} for r, d in release.items() if r not in recorded]
        if new:
            connection.execute(insert(history).on_conflict_do_nothing(index_elements=["revision"]), new)
        click.echo(f"release-migrate: at head {head}; {len(new)} revision(s) newly recorded in {HISTORY_TABLE}", err=True)
