"""The tables, as SQLAlchemy models: what `flask db migrate` compares the database with, and the column sizes the
API validates against. The API's requests use plain SQL (tasks_api/store.py), not these classes."""
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


class Task(db.Model):
    """The tutorial's model, unchanged: existing tutorial databases hold exactly this table."""

    # No __tablename__: Flask-SQLAlchemy derives "task", the name the tutorial's `flask db migrate` created.
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(80), nullable=False)
    description = db.Column(db.String(200))


class IdempotencyKey(db.Model):
    """An `Idempotency-Key` of a `POST /tasks` that created a task, kept for tasks_api/idempotency.py's TTL.

    Written in the same statement as the task (tasks_api/store.py), so a key exists exactly when its task does.
    No foreign key: the row is the key's record, not part of the task, and the insert stays one index lookup cheaper.
    """

    __tablename__ = "idempotency_key"
    key = db.Column(db.String(255), primary_key=True)
    # SHA-256 of the request the key was first used with (idempotency.fingerprint).
    request_hash = db.Column(db.LargeBinary, nullable=False)
    task_id = db.Column(db.Integer, nullable=False)
    # The database's clock, the same for every API pod; expired keys are pruned in created_at order.
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, server_default=db.func.now(), index=True)
