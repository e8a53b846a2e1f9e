"""Shared CLI helpers: turning library errors into one clear line and exit code 2."""

from __future__ import annotations

import contextlib

import typer
from rich.console import Console

from rlif_data import errors

console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def user_errors():
    """Report expected errors (bad input, damaged data) without a traceback."""
    try:
        yield
    except (errors.RlifDataError, ValueError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
