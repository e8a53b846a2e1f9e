"""Write rlif-data episodes as a LeRobotDataset (v3.0) directory, and read one back.

The files are written with pyarrow alone (no ``lerobot``, ``torch`` or
``datasets`` import): LeRobot needs torch and NumPy 2, which this project's
TensorFlow stack cannot share. ``tests/test_convert_lerobot.py`` loads what
this module writes with the real ``lerobot`` package in a virtual environment
of its own. What goes where is `rlif_data.convert.lerobot_layout`.

Reading (``ingest-lerobot``) takes our own exports (exact, with
``meta/rlif.json``) and LeRobot datasets whose cameras are image features;
video features are refused with a message (no decoder is installed here).

Why this module is over ~450 lines: writing and reading are the two halves of
one format's I/O and share the file naming, chunking and checks.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import numpy as np

from rlif_data import schema as sc
from rlif_data.convert import lerobot_layout as lay
from rlif_data.convert.lerobot_layout import LeRobotFormatError

PNG_COMPRESS_LEVEL = 1  # lossless either way; level 1 is ~5x faster to write than 6
MB = 1 << 20


@dataclasses.dataclass
class LeRobotWriteResult:
    """What `write_lerobot` wrote.

    Attributes:
      out: the dataset directory.
      episodes: episodes written.
      frames: frames written (steps: T+1 per episode).
      fps: the dataset's frame rate.
      data_files: data Parquet files written.
    """

    out: str
    episodes: int
    frames: int
    fps: int
    data_files: int


def _arrow_type(col: lay.Column):
    import pyarrow as pa

    if col.dtype == lay.IMAGE:
        # datasets.Image()'s storage: LeRobot reads it back as PIL images.
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    arrow = pa.from_numpy_dtype(np.dtype(col.dtype))
    if col.scalar:
        return arrow
    # Vectors: one fixed-size list (datasets.Sequence). 2-D+ extra step fields:
    # nested fixed-size lists, which `datasets` casts to the Array2D... LeRobot declares.
    for size in reversed(col.shape):
        arrow = pa.list_(arrow, int(size))
    return arrow


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    image = frame[..., 0] if frame.shape[-1] == 1 else frame
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG",
                                                      compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _arrow_column(values: np.ndarray, col: lay.Column):
    import pyarrow as pa

    if col.dtype == lay.IMAGE:
        data = pa.array([_png(f) for f in values], pa.binary())
        return pa.StructArray.from_arrays([data, pa.nulls(len(values), pa.string())],
                                          names=["bytes", "path"])
    if col.scalar:
        return pa.array(values)
    out = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(col.shape):
        out = pa.FixedSizeListArray.from_arrays(out, int(size))
    return out


def _pandas_metadata(index: str, column: str) -> bytes:
    """The ``pandas`` schema metadata that makes `pd.read_parquet` use `index` as the index.

    LeRobot reads ``meta/tasks.parquet`` with pandas and looks tasks up by
    that index; pandas is not installed here, so the metadata is written by
    hand (pandas' own format).
    """
    return json.dumps({
        "index_columns": [index],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": column, "field_name": column, "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": index, "field_name": index, "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": "rlif-data"},
        "pandas_version": "2.2.0",
    }).encode()


def _write_tasks(root: pathlib.Path, tasks: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({lay.TASK_INDEX: pa.array(range(len(tasks)), pa.int64()),
                      "task": pa.array(tasks, pa.string())})
    table = table.replace_schema_metadata({b"pandas": _pandas_metadata("task", lay.TASK_INDEX)})
    pq.write_table(table, root / lay.TASKS_PATH)


def _write_json(path: pathlib.Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def _json_stats(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    return {name: {k: np.asarray(v).tolist() for k, v in s.items()} for name, s in stats.items()}


class _DataFiles:
    """Appends episode tables to data/chunk-*/file-*.parquet, starting a new file past the size."""

    def __init__(self, root: pathlib.Path, schema, limit_bytes: int):
        self.root, self.schema, self.limit = root, schema, limit_bytes
        self.chunk = self.file = 0
        self.files = 0
        self._writer = None
        self._bytes = 0

    def write(self, table) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self._writer is not None and self._bytes + table.nbytes > self.limit:
            self._writer.close()
            self._writer = None
            self.file += 1
            if self.file == lay.CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        if self._writer is None:
            path = self.root / lay.DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, compression="snappy")
            self._bytes = 0
            self.files += 1
        self._writer.write_table(table)
        self._bytes += table.nbytes
        return self.chunk, self.file

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_lerobot(episodes: Iterable[Mapping[str, Any]], out: str, schema: sc.EpisodeSchema, *,
                  fps: Optional[int] = None, source: str = "", robot_type: Optional[str] = None,
                  progress: Optional[Callable[[int], None]] = None,
                  data_file_mb: int = lay.DATA_FILE_MB) -> LeRobotWriteResult:
    """Write episodes as a LeRobotDataset v3.0 directory (the layout of `lerobot_layout`).

    Args:
      episodes: in-memory episodes of `schema`, in order (read one at a time).
      out: a new (or empty) directory; the caller makes the write atomic.
      schema: their schema.
      fps: the frame rate for info.json and ``timestamp``; None: from the
        first episode's step timestamps (`lerobot_layout.infer_fps`).
      source: where the episodes came from, kept in ``meta/rlif.json``.
      robot_type: info.json's ``robot_type``.
      progress: called with the number of episodes written so far.
      data_file_mb: start a new data file past this many MB (LeRobot's 100).

    Returns:
      A `LeRobotWriteResult`.

    Raises:
      LeRobotFormatError: a schema LeRobot cannot hold (see
        `lerobot_layout.step_columns`), or episodes not of `schema`.
      ValueError: no episodes, or a bad `fps`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps}")
    layout = lay.export_layout(schema)
    columns = lay.all_columns(layout)
    arrow_schema = pa.schema([(c.name, _arrow_type(c)) for c in columns])
    root = pathlib.Path(out)
    root.mkdir(parents=True, exist_ok=True)
    files = _DataFiles(root, arrow_schema, data_file_mb * MB)
    rows: list[dict[str, Any]] = []
    tasks: dict[str, int] = {}
    stats: dict[str, list] = {c.name: [] for c in columns}
    frames_total = 0
    try:
        for index, episode in enumerate(episodes):
            if fps is None:
                fps = lay.infer_fps(episode[sc.STEPS][sc.TIMESTAMP_US])
            task = lay.episode_task(episode)
            task_index = tasks.setdefault(task, len(tasks))
            frames = lay.episode_frames(episode, layout, episode_index=index,
                                        first_index=frames_total, task_index=task_index, fps=fps)
            n = len(frames[lay.INDEX])
            table = pa.Table.from_arrays([_arrow_column(frames[c.name], c) for c in columns],
                                         schema=arrow_schema)
            chunk, file = files.write(table)
            rows.append(lay.episode_row(episode, episode_index=index, length=n, task=task,
                                        from_index=frames_total, data_chunk=chunk, data_file=file))
            for c in columns:
                stats[c.name].append(lay.feature_stats(frames[c.name], c.dtype == lay.IMAGE))
            frames_total += n
            if progress is not None:
                progress(index + 1)
    finally:
        files.close()
    if not rows:
        raise ValueError(f"{source or out}: holds no episodes; nothing to convert")
    episodes_path = root / lay.EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), episodes_path, compression="snappy")
    _write_tasks(root, list(tasks))
    _write_json(root / lay.STATS_PATH,
                _json_stats({k: lay.aggregate_stats(v) for k, v in stats.items()}))
    _write_json(root / lay.INFO_PATH,
                lay.info_json(layout, fps=fps, total_episodes=len(rows), total_frames=frames_total,
                              total_tasks=len(tasks), robot_type=robot_type))
    # The whole schema, extra step fields (infos.<name> columns) included: ingest-lerobot
    # reads them back in their own dtype and shape.
    _write_json(root / lay.RLIF_META_PATH, {sc.FORMAT_VERSION_KEY: sc.FORMAT_VERSION,
                                            sc.SCHEMA_KEY: schema.to_json(), "source": source})
    return LeRobotWriteResult(str(root), len(rows), frames_total, fps, files.files)


# ---------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------


def _read_json(path: pathlib.Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LeRobotFormatError(f"{path}: not valid JSON ({e}); {what}") from e
    if not isinstance(data, dict):
        raise LeRobotFormatError(f"{path}: expected a JSON object; {what}")
    return data


def read_info(dataset_dir: str) -> dict[str, Any]:
    """Parse and check ``meta/info.json`` of a LeRobot dataset directory.

    Args:
      dataset_dir: the dataset's root (holding ``meta/`` and ``data/``).

    Returns:
      The info dict.

    Raises:
      FileNotFoundError: `dataset_dir` does not exist.
      LeRobotFormatError: no ``meta/info.json`` (not a LeRobot dataset), bad
        JSON, a codebase version other than v3.x, or no features.
    """
    root = pathlib.Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such LeRobot dataset directory")
    path = root / lay.INFO_PATH
    if not path.is_file():
        raise LeRobotFormatError(
            f"{root}: missing {lay.INFO_PATH}; a LeRobotDataset directory holds {lay.INFO_PATH}, "
            f"{lay.EPISODES_DIR}/ and {lay.DATA_DIR}/ (download the whole dataset, e.g. "
            "`hf download REPO --repo-type dataset --local-dir DIR`)")
    info = _read_json(path, "LeRobot's info.json")
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise LeRobotFormatError(
            f"{path}: codebase_version {version or 'missing'}; only the LeRobot v3.x layout is "
            "read (convert older datasets with lerobot's "
            "`python -m lerobot.datasets.v30.convert_dataset_v21_to_v30`)")
    if not isinstance(info.get("features"), dict) or not info["features"]:
        raise LeRobotFormatError(f"{path}: no 'features'")
    if not isinstance(info.get("fps"), (int, float)) or info["fps"] <= 0:
        raise LeRobotFormatError(f"{path}: 'fps' must be a positive number, "
                                 f"got {info.get('fps')!r}")
    return info


def read_layout(dataset_dir: str, info: Mapping[str, Any]) -> lay.Layout:
    """The layout of a dataset: ours (from ``meta/rlif.json``) or a foreign one's.

    Raises:
      FormatVersionError: ``meta/rlif.json`` of an incompatible rlif format.
      LeRobotFormatError: see `lerobot_layout.foreign_layout`; our layout's
        columns missing from info.json, or extra step fields declared there
        with another dtype/shape (`lerobot_layout.check_declared_features`).
    """
    root = pathlib.Path(dataset_dir)
    meta_path = root / lay.RLIF_META_PATH
    if not meta_path.is_file():
        return lay.foreign_layout(info["features"], str(root / lay.INFO_PATH))
    meta = _read_json(meta_path, "rlif-data's metadata of a LeRobot export")
    sc.check_format_version(meta.get(sc.FORMAT_VERSION_KEY), str(root))
    try:
        schema = sc.EpisodeSchema.from_json(meta[sc.SCHEMA_KEY])
    except (KeyError, TypeError, ValueError) as e:
        raise LeRobotFormatError(f"{meta_path}: no valid '{sc.SCHEMA_KEY}' ({e})") from e
    layout = lay.export_layout(schema)
    lay.check_declared_features(layout, info["features"], str(root / lay.INFO_PATH))
    return layout


def _parquet_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(directory.glob("chunk-*/file-*.parquet"))


def read_episode_rows(dataset_dir: str) -> list[dict[str, Any]]:
    """The episodes table (``meta/episodes/``), one dict per episode in index order.

    Raises:
      LeRobotFormatError: no episode files, unreadable Parquet, missing
        columns, or episode indices that are not 0..N-1.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = pathlib.Path(dataset_dir)
    paths = _parquet_files(root / lay.EPISODES_DIR)
    if not paths:
        raise LeRobotFormatError(f"{root}: no {lay.EPISODES_DIR}/chunk-*/file-*.parquet")
    rows: list[dict[str, Any]] = []
    for path in paths:
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise LeRobotFormatError(f"{path}: not a readable Parquet file ({e})") from e
        keep = [n for n in table.column_names if not n.startswith("stats/")]
        missing = {lay.EPISODE_INDEX, lay.LENGTH, lay.DATA_CHUNK, lay.DATA_FILE} - set(keep)
        if missing:
            raise LeRobotFormatError(f"{path}: missing column(s) {sorted(missing)}")
        rows.extend(table.select(keep).to_pylist())
    rows.sort(key=lambda r: r[lay.EPISODE_INDEX])
    indices = [r[lay.EPISODE_INDEX] for r in rows]
    if indices != list(range(len(rows))):
        raise LeRobotFormatError(f"{root / lay.EPISODES_DIR}: episode indices must be 0..N-1, "
                                 f"found {indices[:10]}{'...' if len(indices) > 10 else ''}")
    return rows


def _decode_png(data: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image)
    except (UnidentifiedImageError, OSError) as e:
        raise LeRobotFormatError(f"{where}: an image frame does not decode ({e})") from e


def _stored_type(arrow_type) -> tuple[Any, Optional[int]]:
    """The value type of a (nested) list column and its values per row (None: variable lists)."""
    import pyarrow as pa

    size: Optional[int] = 1
    while True:
        if isinstance(arrow_type, pa.ExtensionType):  # datasets' Array2D ... as LeRobot writes
            arrow_type = arrow_type.storage_type
        elif pa.types.is_fixed_size_list(arrow_type):
            size = None if size is None else size * arrow_type.list_size
            arrow_type = arrow_type.value_type
        elif pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
            size, arrow_type = None, arrow_type.value_type
        else:
            return arrow_type, size


def _check_info_column(arrow_type, col: lay.Column, where: str) -> None:
    """Refuse an extra step field's column that is not what info.json declares."""
    import pyarrow as pa

    value, size = _stored_type(arrow_type)
    want = pa.from_numpy_dtype(np.dtype(col.dtype))
    per_frame = int(np.prod(col.shape))
    if value != want or size not in (None, per_frame):
        held = f"{value}" + ("" if size is None else f" x {size} per frame")
        raise LeRobotFormatError(
            f"{where}: column '{col.name}' holds {held}; {lay.INFO_PATH} declares {col.dtype} "
            f"shape {list(col.shape)} ({per_frame} per frame); re-export the dataset")


def _flat_values(arr):
    """The values of a (nested) list array, flattened."""
    import pyarrow as pa

    while True:
        if isinstance(arr, pa.ExtensionArray):
            arr = arr.storage
        elif pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) \
                or pa.types.is_large_list(arr.type):
            arr = arr.flatten()
        else:
            return arr


def _column_array(table, col: lay.Column, where: str) -> np.ndarray:
    chunked = table.column(col.name)
    n = len(chunked)
    if col.field == sc.INFOS:
        _check_info_column(chunked.type, col, where)
    if col.dtype == lay.IMAGE:
        data = chunked.combine_chunks().field("bytes").to_pylist()
        if any(d is None for d in data):
            raise LeRobotFormatError(f"{where}: '{col.name}' has frames stored by path only; "
                                     "only embedded image bytes are read")
        frames = [_decode_png(d, f"{where}, '{col.name}'") for d in data]
        out = np.stack(frames) if frames else np.zeros((0,) + col.shape, np.uint8)
        return out.reshape((n,) + col.shape)
    arr = chunked.combine_chunks()
    values = _flat_values(arr)
    if values is not arr:
        flat = values.to_numpy(zero_copy_only=False)
        if flat.size != n * int(np.prod(col.shape)):
            raise LeRobotFormatError(f"{where}: column '{col.name}' holds {flat.size} values "
                                     f"for {n} frames; {lay.INFO_PATH} declares shape "
                                     f"{list(col.shape)}")
        return flat.reshape((n,) + col.shape)
    return arr.to_numpy(zero_copy_only=False).reshape(n)


class _DataCache:
    """The last data file read (episodes are stored one after another)."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self._key = None
        self._table = None

    def table(self, chunk: int, file: int):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._key != (chunk, file):
            path = self.root / lay.DATA_PATH.format(chunk_index=chunk, file_index=file)
            if not path.is_file():
                raise LeRobotFormatError(f"{path}: missing (named by {lay.EPISODES_DIR})")
            try:
                self._table = pq.read_table(path)
            except (pa.ArrowException, OSError) as e:
                raise LeRobotFormatError(f"{path}: not a readable Parquet file ({e})") from e
            self._key = (chunk, file)
        return self._table


def _episode_frames(cache: _DataCache, row: Mapping[str, Any], columns, where: str):
    import pyarrow.compute as pc

    table = cache.table(int(row[lay.DATA_CHUNK]), int(row[lay.DATA_FILE]))
    missing = [c.name for c in columns if c.name not in table.column_names]
    if lay.EPISODE_INDEX not in table.column_names:
        missing.append(lay.EPISODE_INDEX)
    if missing:
        raise LeRobotFormatError(f"{where}: data column(s) {missing} missing")
    rows = table.filter(pc.equal(table.column(lay.EPISODE_INDEX), row[lay.EPISODE_INDEX]))
    if lay.FRAME_INDEX in rows.column_names:
        rows = rows.sort_by(lay.FRAME_INDEX)
    if rows.num_rows != int(row[lay.LENGTH]):
        raise LeRobotFormatError(f"{where}: {rows.num_rows} frames in the data file, the "
                                 f"episodes table says {row[lay.LENGTH]}")
    return {c.name: _column_array(rows, c, where) for c in columns}


def read_lerobot_episodes(dataset_dir: str) -> Iterator[dict[str, Any]]:
    """Read a LeRobotDataset v3.0 directory as rlif-data RLDS episodes.

    Our own exports come back exactly as written (every step field and the
    episode metadata); other LeRobot datasets by name (see
    `lerobot_layout.foreign_episode`). The metadata, layout and episodes
    table are checked when this is called; frames are read lazily, one
    data file at a time.

    Args:
      dataset_dir: the dataset's root directory.

    Returns:
      An iterator of episodes in episode-index order.

    Raises:
      FileNotFoundError: no such directory.
      LeRobotFormatError: missing ``meta/info.json`` or episode files, an
        older layout, video features, bad values (see `read_info`,
        `read_layout`, `read_episode_rows`); while iterating: missing data
        files or columns, frame counts that disagree, NaN/inf.
      FormatVersionError: an export of an incompatible rlif format.
    """
    root = pathlib.Path(dataset_dir).resolve()
    info = read_info(str(root))
    layout = read_layout(str(root), info)
    rows = read_episode_rows(str(root))
    return _iter_episodes(root, layout, rows)


def _iter_episodes(root: pathlib.Path, layout: lay.Layout, rows: list[dict[str, Any]]):
    cache = _DataCache(root)
    columns = list(layout.columns)
    if not layout.own and lay.TIMESTAMP not in [c.name for c in columns]:
        columns.append(lay.Column(lay.TIMESTAMP, "", "float32", (1,)))
    for row in rows:
        index = int(row[lay.EPISODE_INDEX])
        where = f"{root}, episode {index}"
        frames = _episode_frames(cache, row, columns, where)
        if layout.own:
            yield lay.own_episode(frames, layout, row, where)
        else:
            yield lay.foreign_episode(frames, layout, episode_index=index,
                                      dataset_name=root.name, where=where)


def lerobot_schema(dataset_dir: str, name: str = "rlif_episodes") -> sc.EpisodeSchema:
    """The rlif schema a LeRobot dataset's episodes have when read (named `name`)."""
    info = read_info(dataset_dir)
    schema = read_layout(dataset_dir, info).schema
    return dataclasses.replace(schema, name=name)


def count_episodes(dataset_dir: str) -> int:
    """Episodes in a LeRobot dataset (its episodes table)."""
    return len(read_episode_rows(dataset_dir))


def dataset_size(dataset_dir: str) -> int:
    """Bytes of the dataset's files (the ingest job sizes its shards by it)."""
    return sum(p.stat().st_size for p in pathlib.Path(dataset_dir).rglob("*") if p.is_file())


__all__ = ["LeRobotFormatError", "LeRobotWriteResult", "write_lerobot", "read_info",
           "read_layout", "read_episode_rows", "read_lerobot_episodes", "lerobot_schema",
           "count_episodes", "dataset_size"]
