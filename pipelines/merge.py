"""Merge job: combine datasets of one schema (an earlier version + a new round) into one.

    python -m pipelines.merge --input datasets/round-0 --input datasets/round-1 --out datasets/r0-1

Nothing is re-encoded and, on one filesystem, nothing is copied: episodes
that did not change keep their bytes, so each input shard is hard-linked into
the new dataset under the new dataset's shard numbering, and only the index
(dataset_info.json, features, metadata with lineage) is new. Hard links are
safe because datasets are immutable once written (recordings only ever add
shards). Across filesystems (EXDEV) a shard is copied instead; the lineage
records how many shards were linked and how many copied. There is no
per-episode work, so this job runs no Beam pipeline.

Episodes marked invalid (`rlif_data.invalid`) are dropped or kept by
``--invalid_episodes`` (required when an input holds marks). A shard whose
episodes are all dropped is left out; one that holds dropped and kept
episodes is written anew with the kept episodes' records, byte for byte
(``rewritten_shards`` in the lineage). "keep" copies the marks into the output.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import shutil
import sys
from typing import Optional, Sequence

from pipelines import common, episode_lengths, output
from rlif_data import errors, invalid, lineage
from rlif_data.recording import reader as reader_lib
from rlif_data.recording import store
from rlif_data.registry.store import resolve_dataset_ref

_BUILT_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


def _link_or_copy(src: str, dst: str) -> bool:
    """Hard-link `src` to `dst`; copy when links cannot cross filesystems. True if linked."""
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)
        return False


def _common_view(inputs: Sequence[str]) -> Optional[str]:
    """The one view all inputs hold (None: all raw); refuses a mix.

    A merge of a `paper` and an `hg-dagger` dataset would hold rewards and
    actions of two meanings under one name, so it is an error.
    """
    views = [lineage.dataset_view(path) for path in inputs]
    for path, view in zip(inputs[1:], views[1:]):
        if view != views[0]:
            raise errors.SchemaMismatchError(
                f"cannot merge {path} ({lineage.describe_view(view)} view) with {inputs[0]} "
                f"({lineage.describe_view(views[0])} view): relabel the raw recordings with one "
                f"view (`rlif-data relabel --view {views[0] or view}`) and merge those")
    return views[0]


def _rewrite_shard(dst: str, reader: reader_lib.EpisodeReader, episodes: Sequence[int]) -> None:
    """Write a shard holding the records of `episodes` (indices into `reader`), unchanged."""
    writer = store.open_array_record_writer(dst)
    try:
        for i in episodes:
            writer.write(reader.raw(i))
    finally:
        writer.close()


def _plan_shards(path: str, selection: invalid.Selection) -> list[tuple[str, list[int], int]]:
    """(shard path, kept episode indices, episodes in it) of each shard of one input."""
    lengths, _ = store.indexed_shard_lengths(store.read_index(path))
    kept = set(selection.kept)
    plan, first = [], 0
    for shard, length in zip(store.shard_paths(path), lengths):
        indices = list(range(first, first + length))
        plan.append((shard, [i for i in indices if i in kept], length))
        first += length
    return plan


def run(inputs: Sequence[str], out_dir: str, name: Optional[str] = None,
        invalid_episodes: Optional[str] = None) -> str:
    """Merge `inputs` (in order) into a new dataset at `out_dir`.

    Args:
      invalid_episodes: "drop" or "keep" the episodes marked invalid
        (required when an input holds marks; "keep" copies their marks).

    Raises:
      ValueError: fewer than two inputs, or every episode dropped.
      InvalidOptionRequiredError: marked episodes and no `invalid_episodes`.
      SchemaMismatchError: the inputs' schemas (or stored fields) or views differ.
      CorruptRecordingError: an input was not recovered after a crash.
      OutputExistsError: `out_dir` exists.
    """
    if len(inputs) < 2:
        raise ValueError("merge needs at least two input datasets")
    resolved = [resolve_dataset_ref(p) for p in inputs]
    inputs = [r.path for r in resolved]
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir):
        raise output.OutputExistsError(f"{out_dir} already exists; choose a new output directory")
    view = _common_view(inputs)  # before the schema check: its message says what to run
    schemas = [store.read_schema(d) for d in inputs]
    base = schemas[0]
    for path, schema in zip(inputs[1:], schemas[1:]):
        # infos too: one input ingested with --drop-infos cannot share shards with one without.
        if (schema.observation, schema.action_dim, schema.derived, schema.infos) != (
                base.observation, base.action_dim, base.derived, base.infos):
            raise errors.SchemaMismatchError(
                f"cannot merge {path} ({schema.describe()}) with {inputs[0]} ({base.describe()})"
            )
    features = store.build_info(out_dir, base, {}).features
    # (input, shard path, kept episode indices, episodes in the shard), in output order.
    shards: list[tuple[str, str, list[int], int]] = []
    selections = []
    for path in inputs:
        if store.needs_recovery(path):
            raise errors.CorruptRecordingError(
                f"{path}: its writer was interrupted; run `rlif-data recover {path}` first"
            )
        reader_lib.check_stored_features(path, features)
        selection = invalid.select_episodes(path, invalid_episodes)
        selections.append(selection)
        shards.extend((path, *shard) for shard in _plan_shards(path, selection))
    # A shard of dropped episodes only is left out (an empty one stays, as it was).
    shards = [s for s in shards if s[2] or not s[3]]
    if not any(s[2] for s in shards) and any(s.dropped for s in selections):
        raise ValueError(f"every episode of {', '.join(inputs)} is marked invalid; nothing "
                         "to merge")
    name = name or base.name
    schema = dataclasses.replace(base, name=name)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    output.remove_stale_staging(parent)
    staging = output.make_staging_dir(out_dir)
    try:
        linked = rewritten = 0
        num_bytes = 0
        n = len(shards)
        for i, (path, src, kept, length) in enumerate(shards):
            dst = os.path.join(staging, f"{name}-{store.SPLIT}.{store.FILE_FORMAT}-{i:05d}-of-{n:05d}")
            if len(kept) == length:
                linked += _link_or_copy(src, dst)
            else:
                with reader_lib.EpisodeReader(path, repair=False) as reader:
                    _rewrite_shard(dst, reader, kept)
                rewritten += 1
            num_bytes += os.path.getsize(dst)
        params = {lineage.VIEW_PARAM: view, "linked_shards": linked,
                  "copied_shards": n - linked - rewritten}
        if rewritten:
            params["rewritten_shards"] = rewritten
        job = output.JobInfo("merge", params, [common.dataset_input(r) for r in resolved],
                             extra=common.invalid_episodes_lineage(selections, invalid_episodes))
        metadata = {lineage.LINEAGE_KEY: job.metadata()}
        info = store.build_info(staging, schema, metadata)
        info.set_splits(store.split_dict(staging, name, [len(kept) for _, _, kept, _ in shards],
                                         num_bytes, template=_BUILT_TEMPLATE))
        store.write_info(info, staging)
        output.write_side_files(staging, common.kept_marks_files(selections))
        lengths = {path: episode_lengths.read(path) for path in inputs}
        output.write_side_files(staging, episode_lengths.merged_side_file(
            [(lengths[path], kept) for path, _, kept, _ in shards]))
        os.rename(staging, out_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", action="append", required=True,
                        help="input dataset or recording directory (repeat, in order)")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    common.add_invalid_episodes_flag(parser)
    args = parser.parse_args(argv)
    out = run(args.input, args.out, invalid_episodes=args.invalid_episodes)
    print(f"merged {len(args.input)} datasets -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
