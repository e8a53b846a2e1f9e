"""Pieces every job shares: argument parsing, reading episodes inside Beam, errors."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable, Iterator, Optional, Sequence

import apache_beam as beam

from rlif_data import errors
from rlif_data import schema as sc


class PipelineInputError(errors.RlifDataError):
    """An input element failed; the message names the input file and episode."""


def parse_job_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]]) -> tuple[argparse.Namespace, list[str]]:
    """Split argv into the job's own flags and Beam pipeline options.

    Everything the job does not know (``--runner``, ``--direct_num_workers``,
    ``--project``, ``--flink_master`` ...) goes to Beam untouched.
    """
    args, beam_args = parser.parse_known_args(argv)
    return args, beam_args


def element_error(source: str, episode: Any, exc: BaseException) -> PipelineInputError:
    """Wrap a failure inside a Beam element so the job's error says where it happened."""
    return PipelineInputError(f"{source}: episode {episode}: {type(exc).__name__}: {exc}")


class ReadEpisodes(beam.DoFn):
    """index -> (index, episode) from an rlif-data dataset directory (recording or built).

    The key is the episode's index: output datasets keep input order (TFDS sorts
    integer keys when shuffling is disabled).
    """

    def __init__(self, directory: str):
        self._directory = directory
        self._reader = None

    def setup(self):
        from rlif_data.recording.reader import EpisodeReader

        # repair=False: jobs read, they never modify their inputs.
        self._reader = EpisodeReader(self._directory, repair=False)

    def process(self, index: int) -> Iterator[tuple[int, dict]]:
        try:
            episode = self._reader[index]
        except Exception as exc:
            raise element_error(self._directory, index, exc) from None
        yield index, episode

    def teardown(self):
        if self._reader is not None:
            self._reader.close()


def indexed_episodes(source: str, read: Callable[..., Iterator[dict]], *args, **kwargs):
    """Run a reader inside a Beam element: yields (index, episode), failures name the episode.

    Args:
      source: the input file or directory, for messages.
      read: an episode reader such as `read_d4rl_episodes`; called with
        ``*args, **kwargs`` inside the worker.
    """
    episodes = read(*args, **kwargs)
    index = 0
    while True:
        try:
            episode = next(episodes)
        except StopIteration:
            return
        except Exception as exc:
            raise element_error(source, index, exc) from None
        yield index, episode
        index += 1


def map_episode(fn: Callable[[dict], dict], source: str):
    """A Beam-friendly (key, episode) -> (key, fn(episode)) that names failures."""

    def apply(item):
        key, episode = item
        try:
            return key, fn(episode)
        except Exception as exc:
            raise element_error(source, episode.get(sc.EPISODE_ID) or key, exc) from None

    return apply


def dataset_input(directory: str) -> dict[str, Any]:
    """Identify an input dataset for lineage: path, episode count, schema."""
    from rlif_data.recording.store import indexed_shard_lengths, read_index

    lengths, num_bytes = indexed_shard_lengths(read_index(directory))
    return {"path": os.path.abspath(directory), "episodes": sum(lengths), "bytes": num_bytes}
