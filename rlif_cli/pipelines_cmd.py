"""`rlif-data relabel | ingest-* | downsample | merge`: the jobs of `pipelines/`.

Each sub-command hands its arguments unchanged to `python -m pipelines.<job>`'s
own parser, so Beam pipeline options (``--runner``, ``--direct_num_workers``,
``--project`` ...) pass straight through and `--help` shows the job's flags.
"""

from __future__ import annotations

import importlib

import typer

from rlif_cli.common import user_errors

JOBS = {
    "relabel": ("pipelines.relabel", "RLIF rewards (or a baseline view) from session logs."),
    "ingest-d4rl": ("pipelines.ingest_d4rl", "D4RL HDF5 file -> RLDS dataset."),
    "ingest-minari": ("pipelines.ingest_minari", "Local Minari dataset -> RLDS dataset."),
    "ingest-human": ("pipelines.ingest_human", "Robot session logs and demo files -> RLDS dataset."),
    "downsample": ("pipelines.downsample", "Seeded subset of whole episodes."),
    "merge": ("pipelines.merge", "Combine datasets of one schema without copying shards."),
}


def _command(module_name: str):
    def run(ctx: typer.Context):
        module = importlib.import_module(module_name)
        with user_errors():
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
