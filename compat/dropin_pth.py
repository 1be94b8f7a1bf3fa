"""Make every Python process of a virtualenv run Tornado code on asyncweb.

    /path/to/venv/bin/python compat/dropin_pth.py            # install the hook
    /path/to/venv/bin/python compat/dropin_pth.py --remove   # take it out again

It writes ``asyncweb_dropin.pth`` into the environment's site-packages. Python runs an
``import`` line of a ``.pth`` file at start-up, so ``asyncweb.dropin.install()`` is in place
before any code imports ``tornado`` -- in the server, in every kernel or subprocess it starts
and in pytest's plugins alike. The hook sits first on ``sys.meta_path``, so it wins even when
real Tornado is installed next to it (as a dependency of Jupyter, say). ``ASYNCWEB_DROPIN=0``
in the environment switches it off for one process tree.
"""

from __future__ import annotations

import argparse
import os
import sysconfig

PTH_NAME = "asyncweb_dropin.pth"
# One line: .pth files execute lines that start with "import".
PTH_LINE = (
    "import os, sys; "
    "os.environ.get('ASYNCWEB_DROPIN', '1') != '0' and "
    "__import__('asyncweb.dropin', fromlist=['install']).install()\n"
)


def pth_path() -> str:
    return os.path.join(sysconfig.get_paths()["purelib"], PTH_NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="remove the hook")
    args = parser.parse_args()
    path = pth_path()
    if args.remove:
        if os.path.exists(path):
            os.remove(path)
        print(f"removed {path}")
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(PTH_LINE)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
