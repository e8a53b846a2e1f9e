"""Shared CLI helpers: one clear line and exit code 2 for errors, consoles, dataset arguments."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Optional, Union

import typer
from rich.console import Console

from rlif_data import errors

ROOT_HELP = "Data root of the registry (default: $RLIF_DATA_ROOT or ~/.rlif_data)."
# Width for output that is not a terminal: rich would use 80 columns and cut
# table cells ("hopper-ro…"), which a pipe into grep or a file must not see.
PIPE_WIDTH = 1000


def _width(stream) -> Optional[int]:
    """None (rich asks the terminal, or $COLUMNS) for a terminal; `PIPE_WIDTH` otherwise."""
    if os.environ.get("COLUMNS"):
        return None
    try:
        return None if stream.isatty() else PIPE_WIDTH
    except (AttributeError, ValueError):  # a closed or replaced stream
        return PIPE_WIDTH


# soft_wrap: long paths stay on one line, so output can be copied and grepped.
console = Console(soft_wrap=True, width=_width(sys.stdout))
err_console = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))


@contextlib.contextmanager
def user_errors():
    """Report expected errors (bad input, damaged data) without a traceback."""
    try:
        yield
    except (errors.RlifDataError, ValueError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def dataset_dir(arg: str, root: Optional[Union[str, Path]] = None) -> str:
    """A dataset argument as a directory: an existing path, else ``name@tag`` / ``name:version``.

    An argument that is neither is returned as given, so the reader's own
    message says what is wrong with the path.

    Raises:
      RegistryError: a reference the registry at `root` does not know.
    """
    from rlif_data.registry.store import resolve_dataset
    from rlif_data.registry.versions import parse_ref

    if os.path.exists(arg):
        return arg
    try:
        parse_ref(arg)
    except ValueError:
        return arg
    return resolve_dataset(arg, str(root) if root else None)
