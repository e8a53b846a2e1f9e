"""Shared CLI helpers: one clear line and exit code 2 for errors, consoles, dataset arguments,
a headless rendering backend."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional, Union

import typer
from rich.console import Console
from rich.markup import escape

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
    """Report expected errors (bad input, damaged data, a full or read-only disk) in one line.

    Exits with code 2 and no traceback.
    """
    try:
        yield
    except (errors.RlifDataError, ValueError, FileNotFoundError) as exc:
        # escape: messages quote user text (an invalid mark's reason) that may hold brackets.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(code=2) from None
    except OSError as exc:  # what the user can fix (full, read-only disk), not a bug
        err_console.print(f"[bold red]error:[/] {escape(errors.describe_os_error(exc))}",
                          highlight=False, soft_wrap=True)
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


# MuJoCo's offscreen backends, in order of preference: EGL (GPU or Mesa's
# software EGL, libegl1), then OSMesa (libosmesa6, CPU only, slower).
HEADLESS_GL = ("egl", "osmesa")
GL_ENV = "MUJOCO_GL"


def gl_backend_works(backend: str) -> bool:
    """Whether MuJoCo can make a `backend` GL context here, tried in a child process.

    A child, because MuJoCo and PyOpenGL bind their platform at first import:
    a failed try would leave this process unable to try the next backend.
    """
    code = (f"from mujoco.{backend} import GLContext\n"
            "ctx = GLContext(8, 8)\nctx.make_current()\nctx.free()\n")
    env = dict(os.environ, **{GL_ENV: backend, "PYOPENGL_PLATFORM": backend})
    try:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_headless_gl(works: Callable[[str], bool] = gl_backend_works) -> Optional[str]:
    """Set ``$MUJOCO_GL`` to the first working headless backend, unless it is set already.

    MuJoCo's default (GLFW) needs a display; a lab machine over SSH has none,
    and rendering cameras then fails deep inside MuJoCo with a traceback.

    Args:
      works: tells whether a backend renders here (injected by tests).

    Returns:
      The backend chosen, or None when ``$MUJOCO_GL`` was already set (the
      user's choice is kept).

    Raises:
      ValueError: no headless backend works; the message says what to install.
    """
    if os.environ.get(GL_ENV):
        return None
    for backend in HEADLESS_GL:
        if works(backend):
            os.environ[GL_ENV] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    raise ValueError(f"no headless OpenGL for MuJoCo's cameras: install libegl1 (EGL) or "
                     f"libosmesa6 (OSMesa), or set {GL_ENV} (egl, osmesa, glfw with a display)")


def headless_rendering() -> None:
    """Pick a headless MuJoCo backend when ``$MUJOCO_GL`` is unset, and say which on stderr.

    Call before anything imports MuJoCo (the backend is fixed at import).

    Raises:
      ValueError: no headless backend works (see `choose_headless_gl`).
    """
    if "mujoco" in sys.modules and not os.environ.get(GL_ENV):
        # Too late to choose: MuJoCo bound its platform when it was imported.
        return
    backend = choose_headless_gl()
    if backend:
        err_console.print(f"rendering with {GL_ENV}={backend} (headless; set {GL_ENV} to choose)",
                          highlight=False)
