"""Native asyncweb handlers mounted next to the Flask app in the WSGI tests."""

from __future__ import annotations

from asyncweb.web import RequestHandler
from tests.interop_apps import flask_app


class Native(RequestHandler):
    def get(self) -> None:
        self.write("native")


class Release(RequestHandler):
    """Lets a Flask view that blocks on ``flask_app.released`` go on: proves the loop is free."""

    def get(self) -> None:
        flask_app.released.set()
        self.write("ok")
