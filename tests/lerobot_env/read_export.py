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
        "episode_columns": {k: list(episodes[k]) for k in episodes.column_names
                            if k.startswith("rlif/") or k in ("length", "episode_index")},
        "stats_keys": sorted(dataset.meta.stats) if dataset.meta.stats else [],
    }
    (out / "summary.json").write_text(json.dumps(summary, default=_plain))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
