"""Jupyter Server, unmodified, on the drop-in: the 11 checks of compat/jupyter_smoke.py.

Jupyter needs real Tornado installed as a dependency, which must stay out of the project's own
environment, so this test builds a virtualenv of its own (asyncweb editable, jupyter_server,
ipykernel, websocket-client; about a minute with pip's cache warm) in the temporary directory,
keeps it for later runs, and puts the drop-in in place there with compat/dropin_pth.py.
``ASYNCWEB_JUPYTER_SMOKE=0`` skips it; so does a machine where pip cannot get the packages.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["jupyter_server>=2,<3", "ipykernel", "websocket-client"]

pytestmark = pytest.mark.skipif(
    os.environ.get("ASYNCWEB_JUPYTER_SMOKE") == "0", reason="ASYNCWEB_JUPYTER_SMOKE=0"
)


def _jupyter_venv() -> Path:
    stamp_text = f"{sys.version}\n{ROOT}\n" + "\n".join(PACKAGES)
    key = hashlib.sha256(stamp_text.encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"asyncweb-jupyter-smoke-{key}"
    python = home / "bin" / "python"
    stamp = home / "ready"
    if stamp.exists():
        return python
    venv.create(home, with_pip=True, clear=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *PACKAGES],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0:
        pytest.skip(f"pip could not build the Jupyter environment: {install.stderr[-800:]}")
    subprocess.run([str(python), str(ROOT / "compat" / "dropin_pth.py")], check=True)
    stamp.write_text(stamp_text)
    return python


def test_jupyter_server_eleven_checks_on_the_dropin() -> None:
    python = _jupyter_venv()
    result = subprocess.run(
        [str(python), str(ROOT / "compat" / "jupyter_smoke.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tempfile.gettempdir(),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "11 passed, 0 failed" in lines
    assert "server log tracebacks: 0" in lines, result.stdout[-6000:]
