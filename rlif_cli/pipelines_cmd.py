"""`rlif-data relabel | ingest-* | downsample | merge`: the jobs of `pipelines/`.

Each sub-command hands its arguments unchanged to `python -m pipelines.<job>`'s
own parser, so Beam pipeline options (``--runner``, ``--direct_num_workers``,
``--project`` ...) pass straight through and `--help` shows the job's flags.
Anything that is neither the job's flag nor a Beam option exits 2 naming it
(`pipelines.common.parse_job_args`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os

import typer

from rlif_cli.common import user_errors

JOBS = {
    "relabel": ("pipelines.relabel", "RLIF rewards (or a baseline view) from session logs."),
    "ingest-d4rl": ("pipelines.ingest_d4rl", "D4RL HDF5 file -> RLDS dataset."),
    "ingest-minari": ("pipelines.ingest_minari", "Local Minari dataset -> RLDS dataset."),
    "ingest-lerobot": ("pipelines.ingest_lerobot", "Local LeRobotDataset v3.0 -> RLDS dataset."),
    "ingest-human": ("pipelines.ingest_human", "Robot session logs and demo files -> RLDS dataset."),
    "downsample": ("pipelines.downsample", "Seeded subset of whole episodes."),
    "merge": ("pipelines.merge", "Combine datasets of one schema without copying shards."),
}


@contextlib.contextmanager
def _job_scope():
    """Undo what a job's ``--root`` and ``--verbose`` set, when the CLI runs in-process.

    A job sets ``$RLIF_DATA_ROOT`` and log levels for its process; a caller
    that runs several commands in one process (tests, notebooks) must not
    inherit them.
    """
    from rlif_data.registry.store import ROOT_ENV

    root = os.environ.get(ROOT_ENV)
    levels = {name: logging.getLogger(name).level for name in ("pipelines", "absl", "apache_beam")}
    try:
        yield
    finally:
        if root is None:
            os.environ.pop(ROOT_ENV, None)
        else:
            os.environ[ROOT_ENV] = root
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _command(module_name: str):
    def run(ctx: typer.Context):
        module = importlib.import_module(module_name)
        with user_errors(), _job_scope():
            module.main(list(ctx.args))

    return run


def register(app: typer.Typer) -> None:
    """Add one sub-command per pipeline job."""
    for name, (module_name, help_text) in JOBS.items():
        app.command(
            name=name,
            help=f"{help_text} (run with --help for the job's flags)",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                              "help_option_names": []},
            add_help_option=False,
        )(_command(module_name))
