"""Pieces every job shares: argument parsing, reading episodes inside Beam, errors."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import inspect
import os
from typing import Any, Callable, Iterator, Optional, Sequence

import apache_beam as beam

from rlif_data import errors, invalid
from rlif_data import schema as sc
from rlif_data.lineage import InputRef
from rlif_data.registry.store import ROOT_ENV, ResolvedDataset


class PipelineInputError(errors.RlifDataError):
    """An input element failed; the message names the input file and episode."""


class UnknownOptionError(errors.RlifDataError, ValueError):
    """A job was given a flag that is neither its own nor a Beam pipeline option."""


@functools.lru_cache(maxsize=2)
def beam_option_parser(dask: bool = False) -> argparse.ArgumentParser:
    """An argparse parser of every pipeline option Beam defines.

    Built from each `PipelineOptions` subclass in
    `apache_beam.options.pipeline_options` (their own ``_add_argparse_args``),
    as Beam itself does, so the set follows the installed Beam release.

    Args:
      dask: add the options of Beam's Dask runner (``--dask_client_address``
        ...), which live in its own module; importing it costs ~0.4 s, so
        only command lines that mention Dask pay for it.
    """
    from apache_beam.options import pipeline_options as po

    class Parser(po._BeamArgumentParser):  # pylint: disable=protected-access
        def error(self, message):
            # Beam's parser would print its 200-option usage and exit.
            raise UnknownOptionError(f"bad Beam pipeline option: {message}")

    parser = Parser(allow_abbrev=False, add_help=False)
    for cls in vars(po).values():
        if (inspect.isclass(cls) and issubclass(cls, po.PipelineOptions)
                and cls is not po.PipelineOptions and cls.__module__ == po.__name__):
            cls._add_argparse_args(parser)  # pylint: disable=protected-access
    if dask:
        from apache_beam.runners.dask.dask_runner import DaskOptions

        DaskOptions._add_argparse_args(parser)  # pylint: disable=protected-access
    return parser


def mentions_dask(args: Sequence[str]) -> bool:
    """Whether a command line asks for Beam's Dask runner or sets one of its options. Pure."""
    return any("dask" in arg.lower() for arg in args)


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every long flag a parser accepts but ``--help``, e.g. ``["--input", "--out", ...]``."""
    return [s for action in parser._actions for s in action.option_strings  # noqa: SLF001
            if s.startswith("--") and s != "--help"]


def closest_flag(flag: str, job_flags: Sequence[str], beam_flags: Sequence[str]) -> Optional[str]:
    """The valid flag `flag` most likely misspells, or None. Pure.

    The job's own flags are tried first: a typo of ``--view`` must not be
    answered with one of Beam's ~180 options that happens to score higher.
    """
    for candidates in (job_flags, beam_flags):
        match = difflib.get_close_matches(flag, list(candidates), n=1, cutoff=0.6)
        if match:
            return match[0]
    return None


def unknown_option_message(token: str, job_flags: Sequence[str],
                           beam_flags: Sequence[str]) -> str:
    """The one-line refusal of an argument the job does not accept. Pure."""
    if not token.startswith("-"):
        return (f"unexpected argument {token!r}: jobs take flags only "
                f"({', '.join(job_flags)}, or Beam pipeline options); nothing was run")
    flag = token.split("=", 1)[0]
    guess = closest_flag(flag, job_flags, beam_flags)
    hint = f"did you mean {guess}? " if guess else ""
    return (f"unknown option {flag}: {hint}this job takes {', '.join(job_flags)} "
            "and Beam pipeline options (--runner, --direct_num_workers, ...); nothing was run")


def _add_common_flags(parser: argparse.ArgumentParser) -> None:
    known = set(option_names(parser))
    if "--root" not in known:
        parser.add_argument("--root", default=None,
                            help=f"registry root for name@tag inputs (default ${ROOT_ENV} "
                            "or ~/.rlif_data)")
    if "--strict" not in known:
        parser.add_argument("--strict", action="store_true",
                            help="fail the job when the check of what it wrote finds warnings "
                            "too (errors always fail it)")
    if "--verbose" not in known:
        parser.add_argument("--verbose", action="store_true",
                            help="show TFDS, Beam and worker log messages")
    if parser.epilog is None:
        parser.epilog = ("Beam pipeline options (--runner, --direct_num_workers, --project, "
                         "--runner=DaskRunner --dask_client_address=HOST:8786, "
                         "--temp_location, ...) are accepted too; anything else is refused.")


def split_job_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]]) -> tuple[argparse.Namespace, list[str]]:
    """Split argv into the job's own flags and Beam pipeline options, strictly.

    Args:
      parser: the job's parser; ``--root`` and ``--verbose`` are added to it.
      argv: the command line after the job name (None: ``sys.argv[1:]``).

    Returns:
      (the job's arguments, the Beam options as given).

    Raises:
      UnknownOptionError: an argument that is neither the job's nor one of
        Beam's pipeline options (a misspelt ``--veiw`` must not run the job
        with its default view), or a Beam option with a bad value.
    """
    _add_common_flags(parser)
    parser.allow_abbrev = False  # `--v` must not silently become `--view`
    args, rest = parser.parse_known_args(argv)
    beam = beam_option_parser(dask=mentions_dask(rest))
    _, unknown = beam.parse_known_args(rest)
    if unknown:
        raise UnknownOptionError(
            unknown_option_message(unknown[0], option_names(parser), option_names(beam)))
    return args, list(rest)


def parse_job_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]]) -> tuple[argparse.Namespace, list[str]]:
    """A job's command line: its own flags, then Beam pipeline options; anything else exits 2.

    Beam options (``--runner``, ``--direct_num_workers``, ``--project``,
    ``--flink_master`` ...) are checked against Beam's own parser and passed
    on after the defaults of `output.default_beam_args` (a later flag wins).
    ``--root`` applies to every ``name@tag`` input of the job (a job is one
    process, so it sets ``$RLIF_DATA_ROOT`` for it); ``--verbose`` shows the
    TFDS, Beam and worker messages a job hides by default.

    Returns:
      (the job's arguments, the Beam options to run with).

    Raises:
      SystemExit: code 2 after one line on stderr naming the unknown flag and
        its closest valid spelling.
    """
    from pipelines import output

    try:
        args, beam_args = split_job_args(parser, argv)
    except UnknownOptionError as exc:
        parser.exit(2, f"error: {exc}\n")
    if args.root:
        os.environ[ROOT_ENV] = str(args.root)
    output.show_job_logs(args.verbose)
    return args, output.default_beam_args(verbose=args.verbose) + beam_args


def add_invalid_episodes_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--invalid_episodes=drop|keep`` to a job that reads rlif-data episodes.

    An input that holds episodes marked invalid (`rlif_data.invalid`) makes
    the flag required: the job says so in one line and runs nothing.
    """
    parser.add_argument(
        invalid.OPTION_FLAG, "--invalid-episodes", dest="invalid_episodes",
        choices=invalid.OPTIONS, default=None,
        help="what to do with episodes an operator marked invalid (invalid_episodes.jsonl): "
             "drop them, or keep them (the output then carries their marks); required when "
             "an input holds marks; recorded in the lineage")


def invalid_episodes_lineage(selections: Sequence[invalid.Selection],
                             option: Optional[str]) -> dict[str, Any]:
    """The lineage entry of a job's invalid episodes: ``{"invalid_episodes": {...}}``. Pure."""
    return {invalid.LINEAGE_KEY: invalid.combined_lineage(selections, option)}


def kept_marks_files(selections: Sequence[invalid.Selection]) -> dict[str, str]:
    """The side file of a job's output: the marks of the marked episodes it kept. Pure."""
    by_id: dict[str, invalid.Mark] = {}
    for selection in selections:
        for mark in selection.kept_marks:
            by_id.setdefault(mark.episode_id, mark)  # one mark per id, as the format wants
    return {invalid.FILE: invalid.marks_text(by_id.values())} if by_id else {}


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


@dataclasses.dataclass(frozen=True)
class EpisodesByKey:
    """A job's episodes read by index from an rlif-data dataset, each passed through `fn`.

    The same episodes as ``Create(keys) | ParDo(ReadEpisodes(directory)) |
    Map(map_episode(fn, directory))``, said so that the sink
    (`pipelines.sink`) can read each episode in the worker that writes its
    shard: then only keys go out to the workers and only shard notes come
    back, where the Beam transform would send every serialised episode through
    a GroupByKey (on the 1M-step benchmark, docs/scaling.md, that shuffle and
    its copies were most of what a job cost beyond the plain loop). Called, it
    returns that Beam transform (TFDS' writer takes one).

    Attributes:
      directory: the input dataset (a recording or a built dataset).
      keys: the episode indices to read, each once; the output keeps their order.
      fn: what the job does to each episode (None: write it as read); it
        travels to the workers, so it must pickle (a module-level function or
        a `functools.partial` of one).
      label: the name of `fn`'s step in the Beam transform.
    """

    directory: str
    keys: tuple
    fn: Optional[Callable[[dict], dict]] = None
    label: str = "Map"

    def __post_init__(self):
        object.__setattr__(self, "keys", tuple(int(k) for k in self.keys))

    def __call__(self):
        """The Beam transform yielding ``(key, episode)`` for every key."""
        transform = ("Indices" >> beam.Create(self.keys)
                     | "Read" >> beam.ParDo(ReadEpisodes(self.directory)))
        if self.fn is None:
            return transform
        return transform | self.label >> beam.Map(map_episode(self.fn, self.directory))

    def open(self):
        """A reader of `directory` for `episode` (close it after use)."""
        from rlif_data.recording.reader import EpisodeReader

        return EpisodeReader(self.directory, repair=False)  # jobs never repair their inputs

    def episode(self, reader: Any, key: int) -> dict:
        """Episode `key`, read with `reader` and passed through `fn`.

        Raises:
          PipelineInputError: naming `directory` and the episode, as
            `ReadEpisodes` and `map_episode` do.
        """
        try:
            episode = reader[key]
        except Exception as exc:
            raise element_error(self.directory, key, exc) from None
        if self.fn is None:
            return episode
        try:
            return self.fn(episode)
        except Exception as exc:
            raise element_error(self.directory, episode.get(sc.EPISODE_ID) or key, exc) from None


def input_bytes(path: str) -> int:
    """Size of a file, or of every file under a directory (the sink sizes shards by it)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(directory, name))
    return total


def dataset_input(dataset: ResolvedDataset | str) -> InputRef:
    """Identify an input dataset for lineage, with its episode count and size.

    Args:
      dataset: what `resolve_dataset_ref` made of the job's argument (a
        registry version is recorded by ref and content hash), or a path.
    """
    from rlif_data.recording.store import indexed_shard_lengths, read_index

    if isinstance(dataset, str):
        dataset = ResolvedDataset(dataset)
    lengths, num_bytes = indexed_shard_lengths(read_index(dataset.path))
    return dataset.as_input(episodes=sum(lengths), bytes=num_bytes)
