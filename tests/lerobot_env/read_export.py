"""Run inside the LeRobot virtual environment: load a dataset with the real `lerobot` package
and dump what it read as .npy files and one JSON file (never pickle).

    python read_export.py DATASET_DIR OUT_DIR

`tests/test_convert_lerobot.py` compares the dump with the episodes it exported.
"""

import json
import sys
from pathlib import Path

import numpy as np


def _plain(value):
    """numpy scalars (and arrays) as JSON values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _stored_column(dataset, key: str) -> np.ndarray:
    """A column exactly as the loaded Hugging Face dataset stores it (no torch conversion)."""
    import pyarrow as pa

    arr = dataset.hf_dataset.data.column(key).combine_chunks()
    while True:
        if isinstance(arr, pa.ExtensionArray):  # datasets' Array2D ...
            arr = arr.storage
        elif pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) \
                or pa.types.is_large_list(arr.type):
            arr = arr.flatten()
        else:
            break
    shape = tuple(dataset.meta.features[key]["shape"])
    return arr.to_numpy(zero_copy_only=False).reshape((len(dataset.hf_dataset),) + shape)


def main(dataset_dir: str, out_dir: str) -> None:
    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = LeRobotDataset(repo_id="rlif/export", root=dataset_dir)
    columns: dict[str, list] = {}
    tasks = []
    for i in range(len(dataset)):
        item = dataset[i]
        tasks.append(item["task"])
        for key, value in item.items():
            if key == "task":
                continue
            array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
            if key in dataset.meta.camera_keys:
                # LeRobot hands images out as float CHW in [0, 1] (x / 255): undo it exactly.
                array = np.round(np.transpose(array, (1, 2, 0)) * 255.0).astype(np.uint8)
            columns.setdefault(key, []).append(array)
    files = {}
    for n, (key, values) in enumerate(sorted(columns.items())):
        name = f"col{n}.npy"
        np.save(out / name, np.stack(values), allow_pickle=False)
        files[key] = name
    # The extra step fields (infos.<name>): also as stored, since the items above went
    # through LeRobot's torch.tensor(list), which makes float64 values float32.
    stored = {}
    for n, key in enumerate(sorted(k for k in dataset.meta.features if k.startswith("infos."))):
        name = f"stored{n}.npy"
        np.save(out / name, _stored_column(dataset, key), allow_pickle=False)
        stored[key] = {"file": name, "feature": dataset.meta.features[key],
                       "hf_feature": repr(dataset.hf_dataset.features[key]),
                       "item_dtype": str(columns[key][0].dtype)}
    episodes = dataset.meta.episodes
    summary = {
        "lerobot_version": getattr(lerobot, "__version__", "?"),
        "codebase_version": dataset.meta.info["codebase_version"],
        "fps": dataset.fps,
        "num_frames": dataset.num_frames,
        "num_episodes": dataset.num_episodes,
        "camera_keys": list(dataset.meta.camera_keys),
        "tasks": tasks,
        "files": files,
        "stored": stored,
        "episode_columns": {k: list(episodes[k]) for k in episodes.column_names
                            if k.startswith("rlif/") or k in ("length", "episode_index")},
        "stats_keys": sorted(dataset.meta.stats) if dataset.meta.stats else [],
    }
    (out / "summary.json").write_text(json.dumps(summary, default=_plain))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
