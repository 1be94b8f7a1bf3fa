"""A small real Flask application, served by asyncweb through ``WSGIContainer``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, request, stream_with_context

# Set by a native asyncweb handler while a Flask view waits for it: proof the loop ran.
released = threading.Event()


def create_app(prefix: str = "") -> Flask:
    app = Flask(__name__)

    @app.route(prefix + "/hello")
    def hello() -> str:
        return "Hello from Flask"

    @app.route(prefix + "/environ", methods=["GET", "POST"])
    def environ() -> dict[str, Any]:
        env = request.environ
        return {
            key: env.get(key)
            for key in (
                "REQUEST_METHOD",
                "SCRIPT_NAME",
                "PATH_INFO",
                "QUERY_STRING",
                "SERVER_NAME",
                "SERVER_PORT",
                "SERVER_PROTOCOL",
                "REMOTE_ADDR",
                "CONTENT_TYPE",
                "CONTENT_LENGTH",
                "HTTP_X_CUSTOM",
                "wsgi.url_scheme",
                "wsgi.multithread",
            )
        } | {"wsgi.version": list(env["wsgi.version"]), "body": request.get_data(as_text=True)}

    @app.route(prefix + "/form", methods=["POST"])
    def form() -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(request.form.items()))

    @app.route(prefix + "/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            for i in range(5):
                yield f"chunk{i}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.route(prefix + "/wait")
    def wait() -> str:
        # Blocks this worker thread until a native handler on the event loop releases it.
        return "released" if released.wait(10) else "timed out"

    @app.route(prefix + "/fail")
    def fail() -> str:
        raise RuntimeError("view failed")

    @app.route(prefix + "/teapot")
    def teapot() -> tuple[str, int, dict[str, str]]:
        return "short and stout", 418, {"X-Kind": "teapot"}

    return app
