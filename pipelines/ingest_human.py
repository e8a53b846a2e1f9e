"""Ingest job: human data -> one RLDS dataset. Robot session logs and demo files.

    python -m pipelines.ingest_human --sessions sessions/2026-11-20 --sessions sessions/2026-11-21 \
        --demos demos/ --operator alice --out datasets/human-r3 [Beam pipeline options]

`--sessions` takes recording directories written by `rlif-data record` /
`robot-session` (read as they are: flags, sources and metadata kept).
`--demos` takes files in the generic layout of docs/demo_layout.md (.npz files,
a directory of them, or an .h5/.hdf5 file). All inputs must share one schema.
Sessions alone with the same schema can also be combined without copying by
`pipelines.merge`. Session episodes marked invalid are dropped or kept by
``--invalid_episodes`` (required when a session holds marks; `rlif_data.invalid`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import apache_beam as beam

from pipelines import common, output
from rlif_data import episodes, errors, invalid
from rlif_data import schema as sc
from rlif_data.recording.reader import EpisodeReader
from rlif_data.lineage import path_input
from rlif_data.registry.store import resolve_dataset_ref
from rlif_data.sources import demo_files

# Episode keys: input number * this + episode index keeps inputs in the order given.
_STRIDE = 10_000_000


def _read_session(directory: str, indices: Sequence[int]):
    with EpisodeReader(directory, repair=False) as reader:
        for i in indices:
            yield reader[i]


def _read_demos(path: str, operator: str, env_id: str):
    return demo_files.read_demo_episodes(path, operator=operator, env_id=env_id)


def _demo_count(path: str, operator: str, env_id: str) -> int:
    """Episodes in a demo input: one per .npz file; an HDF5 file's are counted by reading."""
    files = demo_files.demo_files(path)
    if files[0].suffix.lower() == demo_files.NPZ_SUFFIX:
        return len(files)
    return sum(1 for _ in _read_demos(path, operator, env_id))


def run(out_dir: str, *, sessions: Sequence[str] = (), demos: Sequence[str] = (),
        operator: str = "", env_id: str = "", name: str = "human_episodes",
        beam_args: Optional[Sequence[str]] = None, strict: bool = False,
        invalid_episodes: Optional[str] = None) -> str:
    """Ingest session logs and demo files into a new dataset at `out_dir`.

    Args:
      strict: fail the job when the check of what it wrote finds warnings too
        (errors always fail it; `rlif_data.checks`).
      invalid_episodes: "drop" or "keep" the session episodes marked invalid
        (required when a session holds marks; "keep" copies their marks).

    Raises:
      ValueError: no inputs, or an input without episodes.
      InvalidOptionRequiredError: marked episodes and no `invalid_episodes`.
      SchemaMismatchError: inputs with different observation/action layouts.
      OutputExistsError: `out_dir` exists.
      CheckFailedError: what the job wrote fails its check; nothing is published.
    """
    resolved = [resolve_dataset_ref(p) for p in sessions]
    inputs = [("session", os.path.abspath(r.path)) for r in resolved] + [
        ("demos", os.path.abspath(p)) for p in demos]
    # Sessions from the registry are recorded by ref and content hash, the rest by path.
    records = [r.as_input(kind="session") for r in resolved] + [
        path_input(p, kind="demos") for p in demos]
    if not inputs:
        raise ValueError("give at least one --sessions directory or --demos path")
    schemas = []
    indices: list[list[int]] = []  # per input, the indices of the episodes read
    selections = []
    for kind, path in inputs:
        if kind == "session":
            with EpisodeReader(path, repair=False) as reader:
                schema = reader.schema
            selection = invalid.select_episodes(path, invalid_episodes)
            selections.append(selection)
            kept = list(selection.kept)
        else:
            first = next(_read_demos(path, operator, env_id), None)
            if first is None:
                raise ValueError(f"{path}: holds no episodes")
            schema = episodes.infer_schema(first)
            kept = list(range(_demo_count(path, operator, env_id)))
        schemas.append((path, schema))
        indices.append(kept)
    base_path, base = schemas[0]
    for path, schema in schemas[1:]:
        if (schema.observation, schema.action_dim) != (base.observation, base.action_dim):
            raise errors.SchemaMismatchError(
                f"cannot ingest {path} ({schema.describe()}) with {base_path} ({base.describe()})")
    if base.derived:
        raise ValueError(f"{base_path} is a relabelled dataset; ingest raw session logs")
    out_schema = sc.EpisodeSchema(base.observation, base.action_dim, name)

    def read(item):
        number, (kind, path) = item
        if kind == "session":
            kept = indices[number]
            for position, episode in common.indexed_episodes(path, _read_session, path, kept):
                yield number * _STRIDE + kept[position], episode
            return
        for index, episode in common.indexed_episodes(path, _read_demos, path, operator, env_id):
            yield number * _STRIDE + index, episode

    def source():
        return (
            "Inputs" >> beam.Create(list(enumerate(inputs)))
            | "Episodes" >> beam.FlatMap(read)
            # No Reshuffle (Dask drops it, graph_rules refuses it): the sink's
            # GroupByKey spreads the shards over the workers.
        )

    job = output.JobInfo("ingest_human", {"operator": operator, "env_id": env_id},
                         records,
                         extra=common.invalid_episodes_lineage(selections, invalid_episodes))
    keys = [number * _STRIDE + i for number, kept in enumerate(indices) for i in kept]
    if not keys and any(s.dropped for s in selections):
        raise ValueError(f"every episode of {', '.join(p for _, p in inputs)} is marked "
                         "invalid; nothing to ingest")
    return output.write_dataset(source, out_dir, out_schema, job, beam_args,
                                description="Human demonstrations and intervention sessions.",
                                keys=keys, estimated_bytes=sum(common.input_bytes(path)
                                                               for _, path in inputs),
                                strict=strict, side_files=common.kept_marks_files(selections))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry: job flags plus any Beam pipeline options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", action="append", default=[],
                        help="recording directory (repeatable)")
    parser.add_argument("--demos", action="append", default=[],
                        help="demo .npz / directory / .h5 (repeatable)")
    parser.add_argument("--operator", default="", help="operator stored with demo episodes")
    parser.add_argument("--env-id", default="", help="env id stored with demo episodes")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    common.add_invalid_episodes_flag(parser)
    args, beam_args = common.parse_job_args(parser, argv)
    out = run(args.out, sessions=args.sessions, demos=args.demos, operator=args.operator,
              env_id=args.env_id, beam_args=beam_args or output.default_beam_args(),
              strict=args.strict, invalid_episodes=args.invalid_episodes)
    print(f"ingested {len(args.sessions)} session dirs and {len(args.demos)} demo inputs -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
