"""Write a Beam PCollection of episodes as a TFDS dataset (array_record), atomically.

TFDS' own Beam writer does the work (sharding, `dataset_info.json`, split
sizes, features). Around it:

* the dataset is built under a hidden staging directory beside the target and
  moved into place with one `rename` only after TFDS finished, so a failed or
  killed job never leaves a directory a reader could take for a complete one;
* an existing target is refused: nothing is overwritten silently;
* the dataset metadata names the job, its parameters, its inputs and the code
  version (lineage for the registry), plus the schema and format version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import shutil
import uuid
from typing import Any, Callable, Optional, Sequence

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.version import code_version

log = logging.getLogger(__name__)
STAGING_PREFIX = ".staging-"
EpisodeSource = Callable[[], Any]
"""Returns a Beam PTransform (applied to the pipeline root) yielding (int key, episode)."""


class OutputExistsError(errors.RlifDataError):
    """The job's output directory already exists."""


class PipelineFailedError(errors.RlifDataError):
    """A job failed; the message names the failing input and episode when known."""


def _input_failure(exc: BaseException) -> Optional[str]:
    """The message of the `PipelineInputError` behind a Beam failure, if any.

    Beam re-raises the innermost error of a failed element (e.g. the C++
    reader's "file too small"), so our message naming the file and episode
    sits further down the exception chain, or, from worker processes, inside
    the remote traceback text.
    """
    from pipelines.common import PipelineInputError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, PipelineInputError):
            return str(exc).split(" [while running")[0]
        exc = exc.__cause__ or exc.__context__
    return None


def _remote_input_failure(text: str) -> Optional[str]:
    marker = "PipelineInputError: "
    if marker not in text:
        return None
    return text.split(marker, 1)[1].splitlines()[0].split(" [while running")[0]


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """What a job records about itself in its output's metadata.

    Attributes:
      job: the pipeline's name, e.g. "relabel".
      params: the job's parameters (JSON-able).
      inputs: input paths or dataset references with whatever identifies them.
    """

    job: str
    params: dict[str, Any]
    inputs: Sequence[dict[str, Any]]

    def metadata(self) -> dict[str, Any]:
        """The lineage block stored in the dataset's metadata.json."""
        return {
            "job": self.job,
            "params": self.params,
            "inputs": list(self.inputs),
            "code_version": code_version(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }


def _builder_class(schema: sc.EpisodeSchema, metadata: dict[str, Any], source: EpisodeSource,
                   description: str):
    import tensorflow_datasets as tfds

    dataset_name = schema.name

    class RlifBeamDataset(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """A dataset whose examples come from a Beam transform given at run time."""

        name = dataset_name
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            info = tfds.rlds.rlds_base.build_info(
                sc.dataset_config(schema, description), self, tfds.core.MetadataDict(metadata)
            )
            # Examples sorted by key (input order), so a rebuild gives the same
            # files; rlds_base.build_info has no argument for it.
            info.as_proto.disable_shuffling = True
            return info

        def _split_generators(self, dl_manager):
            del dl_manager
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            return source()

        # TFDS prints these two with termcolor, whatever the log level: "Downloading
        # and preparing dataset Unknown size ..." (nothing is downloaded) and
        # "Subsequent calls will reuse this data" (about a staging directory the
        # job renames away). Logged instead, so --verbose still shows them.
        def _log_download_bytes(self):
            log.info("building dataset %s under %s", self.name, self.data_dir)

        def _log_download_done(self):
            log.info("dataset %s built under %s", self.name, self.data_dir)

    return RlifBeamDataset


def write_dataset(
    source: EpisodeSource,
    out_dir: str,
    schema: sc.EpisodeSchema,
    job: JobInfo,
    beam_args: Optional[Sequence[str]] = None,
    description: str = "",
) -> str:
    """Run the Beam graph `source` and publish its episodes at `out_dir`.

    Args:
      source: returns the PTransform producing ``(unique int key, episode)`` pairs;
        the dataset stores episodes in key order.
      out_dir: the dataset directory to create (must not exist).
      schema: schema of the episodes.
      job: lineage recorded in the metadata.
      beam_args: Beam pipeline options, e.g. ``["--runner=DirectRunner",
        "--direct_num_workers=2", "--direct_running_mode=multi_processing"]``.
      description: dataset description.

    Returns:
      `out_dir`, now holding a complete TFDS dataset.

    Raises:
      OutputExistsError: `out_dir` exists.
      Exception: whatever failed inside the pipeline (its message names the
        input and episode); nothing is left at `out_dir`.
    """
    import tensorflow_datasets as tfds
    from apache_beam.options.pipeline_options import PipelineOptions

    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir):
        raise OutputExistsError(
            f"{out_dir} already exists; choose a new output directory (jobs never overwrite)"
        )
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f"{STAGING_PREFIX}{os.path.basename(out_dir)}-{uuid.uuid4().hex[:8]}")
    metadata = {sc.FORMAT_VERSION_KEY: sc.FORMAT_VERSION, sc.SCHEMA_KEY: schema.to_json(),
                "lineage": job.metadata()}
    builder_cls = _builder_class(schema, metadata, source, description)
    try:
        builder = builder_cls(data_dir=staging, file_format="array_record")
        options = PipelineOptions(list(beam_args or default_beam_args()))
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(beam_options=options)
            )
        except Exception as exc:
            where = _input_failure(exc) or _remote_input_failure(str(exc))
            if where is None:
                raise
            raise PipelineFailedError(
                f"job {job.job!r} failed, nothing was written to {out_dir}: {where}"
            ) from exc
        built = os.fspath(builder.data_dir)
        os.rename(built, out_dir)  # atomic: readers see nothing or everything
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return out_dir


def default_beam_args(verbose: bool = False) -> list[str]:
    """DirectRunner with 2 worker processes: what a 2-core machine does best.

    Args:
      verbose: let worker processes log warnings; by default they log errors
        only (Beam's "No semi_persistent_directory found" and "Discarding
        unparseable args" warnings are noise to a local user).
    """
    return ["--runner=DirectRunner", "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
            f"--default_sdk_harness_log_level={'WARNING' if verbose else 'ERROR'}"]


def show_job_logs(verbose: bool) -> None:
    """``--verbose``: let TFDS, Beam and this package log at INFO (no-op when False).

    A job is quiet by default (progress bar and one summary line); the levels
    here are what `--verbose` brings back.
    """
    if not verbose:
        return
    # Configures nothing when the CLI already did (it owns the root handler).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name, level in (("pipelines", logging.INFO), ("absl", logging.INFO),
                        ("apache_beam", logging.WARNING)):  # Beam's INFO is per-stage chatter
        logging.getLogger(name).setLevel(level)
