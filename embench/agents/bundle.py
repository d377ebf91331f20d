"""Bundle the on-device agent package (device_agents/python/embench_agent) into one zipapp.

Reproducible: entries sorted, fixed timestamps and modes, stored uncompressed (so zlib versions do
not matter), so the same source gives the same bytes and sha256 on every host, and the devices'
content-addressed caches receive it once.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import embench_agent

PACKAGE = Path(embench_agent.__file__).resolve().parent
SHEBANG = b"#!/usr/bin/env python3\n"
MAIN = b"import sys\n\nfrom embench_agent.__main__ import main\n\nsys.exit(main(sys.argv[1:]))\n"
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix, whatever the host
    return info


def agent_bytes(package: Path = PACKAGE) -> bytes:
    """The zipapp's bytes: a shebang, the package's .py files, and a __main__ that runs it."""
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    buf = io.BytesIO()
    buf.write(SHEBANG)
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(_entry("__main__.py"), MAIN)
        for path in files:
            name = f"embench_agent/{path.relative_to(package).as_posix()}"
            zf.writestr(_entry(name), path.read_bytes())
    return buf.getvalue()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embench" / "agent"


@functools.cache
def bundled_agent() -> tuple[Path, str]:
    """(path of the bundled agent on this host, its sha256), written once per content."""
    data = agent_bytes()
    sha = hashlib.sha256(data).hexdigest()
    for folder in (_cache_dir(), Path(tempfile.gettempdir()) / f"embench-{os.getuid()}"):
        path = folder / f"embench_agent-{sha[:16]}.pyz"
        try:
            if not (path.is_file() and path.read_bytes() == data):
                folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp-{os.getpid()}")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            return path, sha
        except OSError:
            continue  # a read-only home: the temp folder next
    raise OSError(f"cannot write the bundled agent under {_cache_dir()} or {tempfile.gettempdir()}")
