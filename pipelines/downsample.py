"""Downsample job: keep a seeded subset of whole episodes, by count or by transitions.

    python -m pipelines.downsample --input DATASET --out SMALLER \
        (--episodes 10 | --transitions 5000) [--seed 0] [--stratify operator] [Beam options]

The selection (indices, totals, per-stratum counts) is stored in the output's
metadata, so the exact subset can be reproduced and audited. Episodes marked
invalid are left out of the candidates or kept, by ``--invalid_episodes``
(required when the input holds marks; `rlif_data.invalid`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Optional, Sequence

from pipelines import common, output
from rlif_data import downsample as ds
from rlif_data import episodes, invalid
from rlif_data import schema as sc
from rlif_data.recording.reader import EpisodeReader
from rlif_data.registry.store import resolve_dataset_ref

STRATA = {
    "none": None,
    "operator": lambda e: str(e[sc.OPERATOR]),
    "session": lambda e: str(e[sc.SESSION_ID]),
    "source": episodes.dominant_source,
}


def episode_infos(input_dir: str, stratify: str = "none",
                  ids: Optional[list[str]] = None) -> list[ds.EpisodeInfo]:
    """Length and stratum of every episode of a dataset (one read pass).

    Args:
      ids: if given, gets every episode's id appended (same pass).
    """
    key = STRATA[stratify]
    infos = []
    with EpisodeReader(input_dir, repair=False) as reader:
        for i in range(len(reader)):
            episode = reader.summary(i)
            infos.append(ds.EpisodeInfo(i, len(episode[sc.STEPS][sc.IS_FIRST]) - 1,
                                        key(episode) if key else ""))
            if ids is not None:
                ids.append(str(episode[sc.EPISODE_ID]))
    return infos


def run(input_dir: str, out_dir: str, *, episodes: Optional[int] = None,
        transitions: Optional[int] = None, seed: int = 0, stratify: str = "none",
        beam_args: Optional[Sequence[str]] = None, strict: bool = False,
        invalid_episodes: Optional[str] = None) -> str:
    """Write the selected episodes of `input_dir` to a new dataset at `out_dir`.

    Args:
      strict: fail the job when the check of what it wrote finds warnings too
        (errors always fail it; `rlif_data.checks`).
      invalid_episodes: "drop" (never selected) or "keep" (selected like the
        others; the output carries the marks of those selected) the episodes
        marked invalid; required when the input holds marks.

    Raises:
      ValueError: bad selection arguments or an empty input.
      InvalidOptionRequiredError: marked episodes and no `invalid_episodes`.
      OutputExistsError: `out_dir` exists.
      CheckFailedError: what the job wrote fails its check; nothing is published.
    """
    if stratify not in STRATA:
        raise ValueError(f"stratify must be one of {list(STRATA)}, got {stratify!r}")
    resolved = resolve_dataset_ref(input_dir)
    input_dir = resolved.path
    ids: list[str] = []
    infos = episode_infos(input_dir, stratify, ids)
    if not infos:
        raise ValueError(f"{input_dir} holds no episodes; nothing to downsample")
    marks = invalid.select_episodes(input_dir, invalid_episodes, ids)
    candidates = set(marks.kept)
    selection = ds.select_episodes([i for i in infos if i.index in candidates],
                                   episodes=episodes, transitions=transitions, seed=seed,
                                   stratify=stratify != "none")
    chosen = set(selection.indices)
    kept_ids = {ids[i] for i in chosen}
    marks = dataclasses.replace(
        marks, kept_marks=tuple(m for m in marks.kept_marks if m.episode_id in kept_ids))
    with EpisodeReader(input_dir, repair=False) as reader:
        schema = reader.schema

    # Read by key: the sink reads and writes each shard's episodes in one worker.
    source = common.EpisodesByKey(input_dir, selection.indices)

    params = {"episodes": episodes, "transitions": transitions, "seed": seed,
              "stratify": stratify, "selected_episodes": len(selection.indices),
              "selected_transitions": selection.transitions,
              "per_stratum": selection.per_stratum, "indices": list(selection.indices)}
    job = output.JobInfo("downsample", params, [common.dataset_input(resolved)],
                         extra=common.invalid_episodes_lineage([marks], invalid_episodes))
    # The output's share of the input's bytes, by transitions kept.
    total = sum(info.transitions for info in infos) or 1
    estimated = (job.inputs[0].bytes or 0) * selection.transitions // total
    return output.write_dataset(source, out_dir, schema, job, beam_args,
                                description="A seeded subset of whole episodes.",
                                keys=list(selection.indices), estimated_bytes=estimated,
                                strict=strict, side_files=common.kept_marks_files([marks]))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry: job flags plus any Beam pipeline options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--episodes", type=int)
    target.add_argument("--transitions", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stratify", default="none", choices=list(STRATA))
    common.add_invalid_episodes_flag(parser)
    args, beam_args = common.parse_job_args(parser, argv)
    out = run(args.input, args.out, episodes=args.episodes, transitions=args.transitions,
              seed=args.seed, stratify=args.stratify,
              beam_args=beam_args or output.default_beam_args(), strict=args.strict,
              invalid_episodes=args.invalid_episodes)
    print(f"downsampled {args.input} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
