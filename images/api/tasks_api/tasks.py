"""The `/tasks` routes: list a page, read one, create one (at most once per `Idempotency-Key`)."""
from datetime import timezone

from flask import Blueprint, Response, jsonify, request

from . import idempotency, pages, store
from .database import Database
from .request_body import BodyError, read_object
from .task_input import validate_task


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def blueprint(db: Database) -> Blueprint:
    routes = Blueprint("tasks", __name__)

    @routes.get("/tasks")
    def list_tasks():
        page, problem = pages.parse_page(request.args.to_dict(flat=False))
        if page is None:
            return error(400, str(problem))
        tasks, more = store.page(db, page.after, page.limit)
        if not more:
            return jsonify(tasks=tasks)
        # Relative to the host, as the client addressed it (script_root: a prefix a proxy mounts the app under).
        next_url = page.next_url(f"{request.script_root}{request.path}", tasks[-1]["id"])
        return jsonify(tasks=tasks, next=next_url), 200, {"Link": f'<{next_url}>; rel="next"'}

    @routes.get("/tasks/<task_id>")
    def get_task(task_id: str):
        number, problem = pages.parse_task_id(task_id)
        if number is None:
            return error(400, str(problem))
        task = store.get(db, number)
        if task is None:
            return error(404, f"task {number} not found")
        return jsonify(task)

    @routes.post("/tasks")
    def create_task():
        key, problem = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        if problem:
            return error(400, problem)
        try:
            body = read_object(request)
        except BodyError as e:
            return error(400, str(e))
        fields, problem = validate_task(body)
        if fields is None:
            return error(400, str(problem))
        if key is None:
            return jsonify(store.create(db, fields)), 201
        result = store.create_once(db, fields, key)
        if isinstance(result, dict):
            return jsonify(result), 201
        first_used = result.first_used.astimezone(timezone.utc).isoformat(timespec="seconds")
        first = f"{idempotency.HEADER} {key!r} was first used at {first_used}"
        if not result.matches:
            return error(422, f"{first} with a different request; a key may only be reused to retry the same request")
        if result.task is None:
            return error(409, f"{first} and created task {result.task_id}, which no longer exists")
        return jsonify(result.task), 201, {idempotency.REPLAYED_HEADER: "true"}

    return routes
