"""The Typer application objects that every command module registers onto."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from vidroute import __version__

app = typer.Typer(
    name="vidroute",
    rich_markup_mode="rich",
    no_args_is_help=True,
    help="Distil an LLM intent router for video search into a millisecond CPU student, and search video with it.",
)
queries_app = typer.Typer(no_args_is_help=True, help="Synthetic query generation.")
data_app = typer.Typer(no_args_is_help=True, help="Import and export datasets (Bedrock, OpenAI, Parquet).")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print JSON (kept apart from tests).")
app.add_typer(queries_app, name="queries")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")

console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vidroute {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
