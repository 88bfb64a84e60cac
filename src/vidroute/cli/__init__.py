"""The `vidroute` command line: a thin shell over the library, one module per pipeline stage."""

from __future__ import annotations

import importlib
import sys

from vidroute.cli._app import app, console
from vidroute.errors import VidrouteError

# Each module registers its commands on import; listed in pipeline order.
_COMMAND_MODULES = ("queries", "label", "data", "train", "route", "evaluate", "index", "search", "serve", "demo")

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"vidroute.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a stage not built yet must not break the others
        if _exc.name != f"vidroute.cli.{_name}":
            raise


def main() -> None:
    """Entry point: vidroute's own errors become one red line and exit code 1, not a traceback."""
    try:
        app()
    except VidrouteError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)


__all__ = ["app", "main"]
