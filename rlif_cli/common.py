"""Shared CLI helpers: turning library errors into one clear line and exit code 2."""

from __future__ import annotations

import contextlib

import typer
from rich.console import Console

from rlif_data import errors

# soft_wrap: long paths stay on one line, so output can be copied and grepped.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def user_errors():
    """Report expected errors (bad input, damaged data) without a traceback."""
    try:
        yield
    except (errors.RlifDataError, ValueError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
