"""ASGI both ways (Tornado has neither): the names of the package's modules, in one place.

- :mod:`.adapter`: :class:`ASGIAdapter`, an asyncweb ``Application`` served by an ASGI server
  (uvicorn, hypercorn, granian, daphne).
- :mod:`.container`: :class:`ASGIContainer`, an ASGI application (Starlette, FastAPI, Django)
  mounted inside an asyncweb ``Application`` as a rule target.
- :mod:`._common`: the ASGI types (``Scope``, ``Message``, ``Receive``, ``Send``, ``ASGIApp``).
"""

from __future__ import annotations

from asyncweb.asgi._common import ASGIApp as ASGIApp
from asyncweb.asgi._common import Message as Message
from asyncweb.asgi._common import Receive as Receive
from asyncweb.asgi._common import Scope as Scope
from asyncweb.asgi._common import Send as Send
from asyncweb.asgi.adapter import ASGIAdapter
from asyncweb.asgi.container import ASGIContainer
from asyncweb.util import _claim_public_names

__all__ = ["ASGIAdapter", "ASGIContainer"]

_claim_public_names(globals())
