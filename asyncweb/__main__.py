"""``python -m asyncweb serve module:app``: the ``asyncweb`` command."""

import sys

from asyncweb.cli import main

if __name__ == "__main__":
    sys.exit(main())
