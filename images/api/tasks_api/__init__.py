"""The tasks API: the tutorial's Flask app, configured from the environment the Kubernetes Secret provides.

`create_app` is the factory both `flask` (FLASK_APP=tasks_api) and gunicorn (`tasks_api:create_app()`) load.
"""
import os
from typing import Mapping, Optional

from flask import Flask, jsonify
from flask_migrate import Migrate

from . import database, deadline, errors, settings, tasks
from .models import db
from .release_migrate import release_migrate

# Inside the package's parent, not the working directory: `flask db upgrade` finds it from any cwd.
MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def create_app(env: Optional[Mapping[str, str]] = None) -> Flask:
    config = settings.load(os.environ if env is None else env)
    app = Flask(__name__)
    # Installs Flask's log handler on the package's logger, which tasks_api.database logs through.
    app.logger.debug("tasks API starting")
    # Flask-SQLAlchemy's engine serves `flask db …` and `flask release-migrate` (transactions, no statement
    # timeout); the API's requests use their own pool (database.api_engine), which opens no connection until used.
    app.config["SQLALCHEMY_DATABASE_URI"] = config.database_url
    deadline.install()
    db.init_app(app)
    with app.app_context():
        database.add_connect_defaults(db.engine, database.transport_parameters(config), connect_timeout=config.connect_timeout)
    Migrate(app, db, directory=MIGRATIONS_DIR)
    # The migration Job's command: `flask db upgrade` that lets an image rollback through.
    app.cli.add_command(release_migrate)

    @app.get("/healthz")
    def healthz():
        # Deliberately does not query the database: this path is the liveness probe too, and a probe that
        # followed the database would restart every API pod during a database restart or failover.
        return jsonify(status="ok")

    app.register_blueprint(tasks.blueprint(database.Database(database.api_engine(config), config)))
    errors.register(app)
    return app
