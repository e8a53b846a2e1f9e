"""`rlif-data`: registers the sub-commands; each lives in its own module."""

from __future__ import annotations

import logging
import os

import typer

from rlif_cli import (
    check_cmd,
    convert_cmd,
    datasets_cmd,
    download_cmd,
    inspect_cmd,
    pipelines_cmd,
    quickstart_cmd,
    record_cmd,
    robot_cmd,
    train_cmd,
    view_cmd,
)

app = typer.Typer(
    help="rlif-data: record interventions as RLDS episodes, build datasets, train RLIF agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (record_cmd, inspect_cmd, quickstart_cmd, pipelines_cmd, robot_cmd, datasets_cmd,
               train_cmd, check_cmd, view_cmd, download_cmd, convert_cmd):
    module.register(app)


def main() -> None:
    """Console entry point."""
    # TF/absl log noise hides the output people came for.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)  # workers relay harmless warnings
    # Beam's GCP extras are optional; their absence is not news to a local user.
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())
    app()


if __name__ == "__main__":
    main()
