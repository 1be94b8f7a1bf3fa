"""Run unmodified Tornado code on asyncweb: ``import tornado.X`` gives ``asyncweb.X``.

``install()`` puts an import hook first on ``sys.meta_path``; from then on ``tornado`` and
every ``tornado.<name>`` resolve to the very module objects ``asyncweb`` and
``asyncweb.<name>`` (so ``tornado.web.RequestHandler is asyncweb.web.RequestHandler``). A
Tornado module asyncweb does not have raises ``ModuleNotFoundError`` naming both.

``tornado`` itself is a thin package of its own: ``tornado.version``/``version_info`` report the
Tornado API level asyncweb implements (``TORNADO_VERSION``, what version checks in Tornado
software compare against), while ``asyncweb.version`` stays asyncweb's own release; every other
attribute, submodules included (loaded on first access), is asyncweb's.

From the command line, ``python -m asyncweb.dropin app.py [args...]`` installs the hook and
runs ``app.py`` as ``__main__`` with ``sys.argv = ["app.py", args...]``; ``-m module`` runs a
module instead of a file.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["TORNADO_VERSION", "TORNADO_VERSION_INFO", "install", "installed", "uninstall"]

# The Tornado release whose API asyncweb follows.
TORNADO_VERSION = "6.6.1"
TORNADO_VERSION_INFO = (6, 6, 1, 0)

_ALIAS = "tornado"
_TARGET = "asyncweb"


class _TornadoPackage(types.ModuleType):
    """``sys.modules["tornado"]``: Tornado's version, asyncweb for everything else."""

    def __getattr__(self, name: str) -> Any:
        import asyncweb

        if name in asyncweb.SUBMODULES:
            try:
                # Through the import system, so ``tornado.<name>`` is recorded too.
                return importlib.import_module(f"{_ALIAS}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{_ALIAS}.{name}":
                    raise
        if not name.startswith("__"):
            try:
                return getattr(asyncweb, name)
            except AttributeError:
                pass
        raise AttributeError(f"module {_ALIAS!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        import asyncweb

        return sorted(set(self.__dict__) | set(dir(asyncweb)))


def _fill_tornado_package(module: types.ModuleType) -> None:
    import asyncweb

    module.__file__ = asyncweb.__file__
    module.__path__ = list(asyncweb.__path__)
    module.__doc__ = asyncweb.__doc__
    module.__all__ = list(asyncweb.__all__)  # type: ignore[attr-defined]
    module.version = TORNADO_VERSION  # type: ignore[attr-defined]
    module.version_info = TORNADO_VERSION_INFO  # type: ignore[attr-defined]


class _AliasLoader(importlib.abc.Loader):
    """Loads ``tornado.X`` by importing ``asyncweb.X`` and putting it in its place."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name == _ALIAS:
            return _TornadoPackage(spec.name)
        # A placeholder: the import system records the real module once exec_module has
        # replaced it in sys.modules, and returns that one to the importer.
        return types.ModuleType(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        if isinstance(module, _TornadoPackage):
            _fill_tornado_package(module)
            return
        target = importlib.import_module(self.target)
        sys.modules[module.__name__] = target


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real_name = _TARGET + fullname[len(_ALIAS) :]
        try:
            real_spec = importlib.util.find_spec(real_name)
        except ModuleNotFoundError:
            real_spec = None
        if real_spec is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: asyncweb has no {real_name!r} to stand in for it",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(
            fullname,
            _AliasLoader(real_name),
            is_package=real_spec.submodule_search_locations is not None,
        )


_finder = _AliasFinder()


def install() -> None:
    """Make ``tornado`` imports resolve to asyncweb (idempotent).

    Tornado modules already imported stay as they are; call this before importing them.
    """
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def installed() -> bool:
    return _finder in sys.meta_path


def uninstall() -> None:
    """Remove the hook and forget the ``tornado`` aliases it made."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        module = sys.modules[name]
        if isinstance(module, _TornadoPackage) or getattr(module, "__name__", "").startswith(
            _TARGET
        ):
            del sys.modules[name]
