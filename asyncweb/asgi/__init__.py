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

__all__ = ["ASGIAdapter", "ASGIContainer"]

# The public names report the module they were always imported from (reprs, pickles, docs).
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
