"""Unpack the source distribution of an installed package (its test suite ships there).

    python compat/fetch_sdist.py DIST DEST     # prints the unpacked directory

Asks pip for the sdist of exactly the installed version of DIST, so the tests match the code
they run against, and unpacks it under DEST (reused when already there).
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import subprocess
import sys
import tarfile


def main() -> int:
    dist, dest = sys.argv[1], sys.argv[2]
    version = importlib.metadata.version(dist)
    os.makedirs(dest, exist_ok=True)
    normalized = dist.replace("-", "_")
    for stem in {dist, normalized}:
        unpacked = os.path.join(dest, f"{stem}-{version}")
        if os.path.isdir(unpacked):
            print(unpacked)
            return 0
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*pip, "-d", dest, f"{dist}=={version}"], check=True)
    archives = [
        path
        for stem in {dist, normalized}
        for path in glob.glob(os.path.join(dest, f"{stem}-{version}.tar.gz"))
    ]
    if not archives:
        print(f"no sdist of {dist} {version} in {dest}", file=sys.stderr)
        return 1
    with tarfile.open(archives[0]) as archive:
        archive.extractall(dest, filter="data")
    print(archives[0][: -len(".tar.gz")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
