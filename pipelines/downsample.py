"""Downsample job: keep a seeded subset of whole episodes, by count or by transitions.

    python -m pipelines.downsample --input DATASET --out SMALLER \
        (--episodes 10 | --transitions 5000) [--seed 0] [--stratify operator] [Beam options]

The selection (indices, totals, per-stratum counts) is stored in the output's
metadata, so the exact subset can be reproduced and audited. Episodes marked
invalid are left out of the candidates or kept, by ``--invalid_episodes``
(required when the input holds marks; `rlif_data.invalid`).

Episode lengths come from the input's stored lengths when a job wrote it
(`pipelines.episode_lengths`; unstratified, unmarked inputs), else from one
read pass in the driver (recordings, older data: ~0.3 s per 1000 episodes of
1000 steps). Either way each selected episode's length is checked where a
worker reads it, and a mismatch fails the job before anything is published.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam

from pipelines import common, episode_lengths, output
from rlif_data import downsample as ds
from rlif_data import episodes, errors, invalid
from rlif_data import schema as sc
from rlif_data.recording.reader import EpisodeReader
from rlif_data.registry.store import resolve_dataset_ref

log = logging.getLogger(__name__)

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


def stored_infos(input_dir: str, stratify: str = "none") -> Optional[list[ds.EpisodeInfo]]:
    """Every episode's length from the input's stored lengths, or None to read the episodes.

    Used only where lengths are all the selection needs: no strata, and no
    marks file (whose episode ids would be read anyway). The lengths are
    taken when they fit the input's index (`episode_lengths.read`); each
    selected episode is checked against its length when it is read.

    Raises:
      CorruptRecordingError: the input has no readable index.
    """
    if stratify != "none" or os.path.exists(invalid.marks_path(input_dir)):
        return None
    lengths = episode_lengths.read(input_dir)
    if lengths is None:
        return None
    log.info("%s: episode lengths from %s", input_dir, episode_lengths.path(input_dir))
    return [ds.EpisodeInfo(i, n) for i, n in enumerate(lengths)]


class StoredLengthError(errors.RlifDataError, ValueError):
    """An episode read has another length than the stored one its selection assumed."""


def check_length(episode: Mapping[str, Any], expected: int, lengths_file: str) -> None:
    """Refuse an episode whose transitions differ from `expected`. Pure.

    Raises:
      StoredLengthError: naming both lengths, `lengths_file` and the fix.
    """
    got = len(episode[sc.STEPS][sc.IS_FIRST]) - 1
    if got != expected:
        raise StoredLengthError(
            f"it holds {got} transitions but {lengths_file} says {expected}: that file does "
            "not describe this dataset (edited, or the shards were replaced); delete it and "
            "run again (downsample then reads every episode's length)")


@dataclasses.dataclass(frozen=True)
class EpisodesOfKnownLength(common.EpisodesByKey):
    """`common.EpisodesByKey` that checks each episode's length where it is read.

    The selection was made from stored lengths (`stored_infos`) or from a
    read pass; either way an episode that turns out to have another length
    fails the job, naming the input and the episode, before anything is
    published.

    Attributes:
      lengths: ``(key, transitions)`` of every key to read (kept when the
        sink replaces `keys` by each shard's).
      lengths_file: the stored lengths, named in the error.
    """

    lengths: tuple = ()
    lengths_file: str = ""

    @functools.cached_property
    def _expected(self) -> dict[int, int]:
        return dict(self.lengths)

    def _checked(self, key: int, episode: dict) -> dict:
        try:
            check_length(episode, self._expected[key], self.lengths_file)
        except Exception as exc:
            raise common.element_error(self.directory, key, exc) from None
        return episode

    def episode(self, reader: Any, key: int) -> dict:
        """Episode `key` read with `reader`, its length checked.

        Raises:
          PipelineInputError: naming the input and the episode (a read
            failure, or a `StoredLengthError`).
        """
        return self._checked(key, super().episode(reader, key))

    def __call__(self):
        """The Beam transform yielding ``(key, episode)``, lengths checked."""
        return super().__call__() | "CheckLength" >> beam.Map(
            lambda item: (item[0], self._checked(*item)))


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
    ids: Optional[list[str]] = None
    infos = stored_infos(input_dir, stratify)
    if infos is None:
        ids = []
        infos = episode_infos(input_dir, stratify, ids)
    if not infos:
        raise ValueError(f"{input_dir} holds no episodes; nothing to downsample")
    marks = invalid.select_episodes(input_dir, invalid_episodes, ids)
    candidates = set(marks.kept)
    selection = ds.select_episodes([i for i in infos if i.index in candidates],
                                   episodes=episodes, transitions=transitions, seed=seed,
                                   stratify=stratify != "none")
    chosen = set(selection.indices)
    # Without ids read, the input has no marks file (`stored_infos`): no marks to keep.
    kept_ids = {ids[i] for i in chosen} if ids is not None else set()
    marks = dataclasses.replace(
        marks, kept_marks=tuple(m for m in marks.kept_marks if m.episode_id in kept_ids))
    with EpisodeReader(input_dir, repair=False) as reader:
        schema = reader.schema

    # Read by key: the sink reads and writes each shard's episodes in one worker,
    # which checks each one's length against the one the selection assumed.
    lengths = {i.index: i.transitions for i in infos if i.index in chosen}
    source = EpisodesOfKnownLength(input_dir, selection.indices,
                                   lengths=tuple(sorted(lengths.items())),
                                   lengths_file=episode_lengths.path(input_dir))

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
