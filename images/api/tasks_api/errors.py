"""Errors as JSON `{"error": "…"}`: HTTP errors with their message, the database's unavailability as a retryable 503."""
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .database import DatabaseUnavailable
from .request_body import too_large_message

UNAVAILABLE = "database unavailable, retry later"
# Patroni promotes a new leader within seconds; a client retrying sooner would meet the same failover.
RETRY_AFTER_SECONDS = 5


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if isinstance(e, RequestEntityTooLarge):
            return jsonify(error=too_large_message(request.content_length)), 413
        return jsonify(error=e.description), e.code

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(e: DatabaseUnavailable):
        # Logged where it happened (tasks_api/database.py), with the reason; the client only needs to retry.
        return jsonify(error=UNAVAILABLE), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
