"""One error handler: HTML for browsers, JSON for API and fetch requests."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response


def wants_json() -> bool:
    """JSON for ``/api/`` paths and for clients that prefer JSON to HTML (``fetch``)."""
    if request.path.startswith("/api/"):
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json" and (
        accept["application/json"] > accept["text/html"]
    )


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[Response | str, int]:
        code = exc.code or 500
        if code < 400:  # a redirect raised as an exception (routing's trailing slash)
            return exc.get_response()
        if wants_json():
            response = jsonify(error=exc.name, message=exc.description, status=code)
            return response, code
        return render_template("error.html", error=exc), code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response | tuple[Response | str, int]:
        app.logger.exception("unhandled error on %s", request.path)
        return http_error(InternalServerError())
