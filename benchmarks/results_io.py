"""Where benchmark scripts put their results: one JSON file, directories created."""

import json
import os


def write_results(path: str, payload: dict) -> None:
    """Write `payload` as indented, key-sorted JSON to `path` and say so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {path} ({payload['wall_s']:.0f} s)")
