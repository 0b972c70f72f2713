"""The tasks API: the tutorial's Flask app, configured from the environment the Kubernetes Secret provides.

`create_app` is the factory both `flask` (FLASK_APP=tasks_api) and gunicorn (`tasks_api:create_app()`) load.
"""
import os
from typing import Mapping, Optional

from flask import Flask, jsonify, request
from flask_migrate import Migrate
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from .models import Task, db
from .release_migrate import release_migrate

# Inside the package's parent, not the working directory: `flask db upgrade` finds it from any cwd.
MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")

TITLE_MAX = Task.__table__.c.title.type.length
DESCRIPTION_MAX = Task.__table__.c.description.type.length
FIELDS = ("title", "description")
# SQLSTATE read_only_sql_transaction: the server the read-write Service led to is a replica, which is what a
# client sees for a moment during a failover (the new leader is still promoting, or the old one was demoted).
READ_ONLY_SQL_TRANSACTION = "25006"


def database_url(env: Mapping[str, str]) -> str:
    """DATABASE_URL if set, else a URL built from the tutorial's POSTGRES_* variables."""
    url = env.get("DATABASE_URL", "").strip()
    if url:
        # Heroku-style "postgres://" is refused by SQLAlchemy 1.4.
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        if make_url(url).get_backend_name() != "postgresql":
            raise RuntimeError("DATABASE_URL must be a postgresql:// URL")
        return url
    names = ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise RuntimeError(f"set DATABASE_URL, or all of {', '.join(names)} (missing: {', '.join(missing)})")
    # URL.create escapes the password; an f-string would break on '@', ':' or '/'.
    return URL.create(
        "postgresql",
        username=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        host=env["POSTGRES_HOST"],
        port=int(env.get("POSTGRES_PORT") or 5432),
        database=env["POSTGRES_DB"],
    ).render_as_string(hide_password=False)


def validate_task(body: object) -> tuple[Optional[dict], Optional[str]]:
    """The fields of a new task, or the reason the request body is not one."""
    example = '{"title": "New task", "description": "optional, up to %d characters"}' % DESCRIPTION_MAX
    if not isinstance(body, dict):
        return None, f"request body must be a JSON object with Content-Type: application/json, e.g. {example}"
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        return None, f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}"
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        return None, "'title' is required and must be a non-empty string"
    if len(title) > TITLE_MAX:
        return None, f"'title' is {len(title)} characters; at most {TITLE_MAX} allowed"
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        return None, "'description' must be a string or null"
    if description is not None and len(description) > DESCRIPTION_MAX:
        return None, f"'description' is {len(description)} characters; at most {DESCRIPTION_MAX} allowed"
    return {"title": title, "description": description}, None


def create_app(env: Optional[Mapping[str, str]] = None) -> Flask:
    env = os.environ if env is None else env
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(env)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        # A connection that died with a database restart or failover is replaced, not handed to a request.
        "pool_pre_ping": True,
        "pool_size": int(env.get("DB_POOL_SIZE", "4")),
        "max_overflow": 2,
        "pool_timeout": 5,
        # Fail a request within seconds when the database is unreachable instead of hanging a worker.
        "connect_args": {"connect_timeout": int(env.get("DB_CONNECT_TIMEOUT", "5"))},
    }
    db.init_app(app)
    Migrate(app, db, directory=MIGRATIONS_DIR)
    # The migration Job's command: `flask db upgrade` that lets an image rollback through.
    app.cli.add_command(release_migrate)

    @app.get("/healthz")
    def healthz():
        # Deliberately does not query the database: this path is the liveness probe too, and a probe that
        # followed the database would restart every API pod during a database restart or failover.
        return jsonify(status="ok")

    @app.get("/tasks")
    def list_tasks():
        tasks = db.session.execute(db.select(Task).order_by(Task.id)).scalars()
        return jsonify(tasks=[t.to_dict() for t in tasks])

    @app.post("/tasks")
    def create_task():
        fields, error = validate_task(request.get_json(silent=True))
        if error:
            return jsonify(error=error), 400
        task = Task(**fields)
        db.session.add(task)
        db.session.commit()
        return jsonify(task.to_dict()), 201

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        return jsonify(error=e.description), e.code

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(e):
        # The database is restarting or failing over: a retryable 503, not a 500 (other errors stay 500).
        db.session.rollback()
        app.logger.warning("database unavailable: %s", getattr(e, "orig", e))
        return jsonify(error="database unavailable, retry later"), 503, {"Retry-After": "5"}

    @app.errorhandler(InternalError)
    def database_internal_error(e):
        db.session.rollback()
        if getattr(e.orig, "pgcode", None) == READ_ONLY_SQL_TRANSACTION:
            # A failover is under way: retryable. Every pooled connection may lead to the same former or not yet
            # promoted leader (a connection outlives a change of the Service's endpoints), so they all go; the next
            # request connects through the Service again, to the leader.
            db.engine.dispose()
            app.logger.warning("database is read-only, a failover is under way: %s", e.orig)
            return jsonify(error="database unavailable, retry later"), 503, {"Retry-After": "5"}
        app.logger.error("database error: %s", e.orig)
        return jsonify(error=InternalServerError.description), 500

    return app
