"""``python -m asyncweb.dropin app.py [args...]`` (or ``-m module``): run Tornado code on
asyncweb, unchanged."""

from __future__ import annotations

import runpy
import sys

from asyncweb.dropin import install

_USAGE = "usage: python -m asyncweb.dropin (app.py | -m module) [args...]"


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not argv else sys.stdout)
        raise SystemExit(2 if not argv else 0)
    install()
    if argv[0] == "-m":
        if len(argv) < 2:
            print(_USAGE, file=sys.stderr)
            raise SystemExit(2)
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        # The script's directory comes first on sys.path, as with ``python app.py``.
        import os

        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
