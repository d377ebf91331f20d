"""embench: how a model really runs on each device of a lab.

The Python API (docs/python-api.md): `embench.results`, `embench.samples`, `embench.ops` and
`embench.runs` give a store's runs as pandas DataFrames; they load on first use, so the command line starts fast.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` takes milliseconds to import, before the command's Ctrl-C handler is in place
    from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "ops", "report_data", "results", "runs", "samples"]


def __getattr__(name: str) -> Any:
    if name in ("results", "samples", "ops", "runs", "report_data"):
        from . import api  # noqa: PLC0415

        return getattr(api, name)
    raise AttributeError(f"module 'embench' has no attribute {name!r}")
