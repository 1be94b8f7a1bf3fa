"""The HTML error page of debug mode: the exception, its frames (with the local variables of
the application's own frames), the plain traceback, and the request (credentials hidden).

``RequestHandler.write_error`` sends it when the application has ``debug=True`` and the
client asks for HTML (a browser); other clients get the traceback as text. Every value on the
page is escaped. Never enable debug mode where strangers can reach the server.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from html import escape
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncweb.web.handler import RequestHandler

__all__ = ["render"]

# Request headers whose values the page never shows.
HIDDEN_HEADERS = frozenset(
    ("cookie", "authorization", "proxy-authorization", "x-xsrftoken", "x-csrftoken")
)
_MAX_REPR = 300
_ASYNCWEB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARY_DIRS = tuple(
    {
        os.path.abspath(path) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(key))
    }
)

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f7; }
header { background: #8b1a1a; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; font: 15px ui-monospace, monospace; white-space: pre-wrap; }
section { margin: 18px 28px; }
h2 { font-size: 15px; margin: 0 0 8px; }
.frame { background: #fff; border: 1px solid #ddd; border-radius: 4px; margin-bottom: 8px; }
.frame.app { border-left: 4px solid #8b1a1a; }
.where { padding: 6px 10px; font: 13px ui-monospace, monospace; color: #555; }
.code { padding: 2px 10px 8px; font: 13px ui-monospace, monospace; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; font: 12px ui-monospace, monospace; }
td { border-top: 1px solid #eee; padding: 3px 10px; vertical-align: top; }
td:first-child { width: 18%; color: #555; white-space: nowrap; }
td:last-child { white-space: pre-wrap; word-break: break-all; }
pre { background: #fff; border: 1px solid #ddd; padding: 10px; overflow-x: auto; }
"""


def is_app_frame(filename: str) -> bool:
    """Whether a frame's file is the application's: not asyncweb's, not a library's."""
    path = os.path.abspath(filename)
    if path.startswith(_ASYNCWEB_DIR) or filename.startswith("<"):
        return False
    return not path.startswith(_LIBRARY_DIRS)


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not break the error page
        text = f"<repr failed: {type(e).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


def _frames_html(tb: TracebackType | None) -> str:
    parts = []
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        summary = traceback.FrameSummary(code.co_filename, lineno, code.co_name)
        app = is_app_frame(code.co_filename)
        rows = ""
        if app:
            rows = "".join(
                f"<tr><td>{escape(name)}</td><td>{escape(_short_repr(value))}</td></tr>"
                for name, value in sorted(frame.f_locals.items())
            )
            rows = f"<table>{rows}</table>" if rows else ""
        parts.append(
            f'<div class="frame{" app" if app else ""}">'
            f'<div class="where">{escape(code.co_filename)}:{lineno} in '
            f"<b>{escape(code.co_name)}</b></div>"
            f'<div class="code">{escape((summary.line or "").strip())}</div>{rows}</div>'
        )
    return "".join(parts)


def _request_html(handler: RequestHandler) -> str:
    request = handler.request
    rows = [
        ("Method", request.method or ""),
        ("URI", request.uri or ""),
        ("Version", request.version),
        ("Remote IP", request.remote_ip or ""),
    ]
    for name, value in request.headers.get_all():
        rows.append((name, "(hidden)" if name.lower() in HIDDEN_HEADERS else value))
    return "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)


def render(
    handler: RequestHandler,
    status_code: int,
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    """The debug page for ``exc_info``, raised while ``handler`` served its request."""
    kind, value, tb = exc_info
    reason = escape(handler._reason)
    message = escape("".join(traceback.format_exception_only(kind, value)).strip())
    plain = escape("".join(traceback.format_exception(kind, value, tb)))
    python = escape(sys.version.split()[0])
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{status_code}: {reason}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{status_code}: {reason}</h1><p>{message}</p></header>"
        f"<section><h2>Frames (most recent call last; the application's are marked, with "
        f"their local variables)</h2>{_frames_html(tb)}</section>"
        f"<section><h2>Request</h2><table>{_request_html(handler)}</table></section>"
        f"<section><h2>Traceback</h2><pre>{plain}</pre></section>"
        f"<section><p>Shown because the application runs with debug=True (Python "
        f"{python}). Never serve debug mode to the public.</p></section></body></html>"
    )
