"""Which TFDS feature classes a stored dataset may name, checked before TFDS reads it.

TFDS rebuilds a dataset's features from ``features.json``: every
``pythonClassName`` in it is imported (``importlib.import_module``) so that
the class can register itself. A dataset that came from elsewhere (pull,
archive import, a job input, `show`, `inspect`) could therefore make TFDS
import any module on the path. rlif-data writes only the few feature classes
its schema uses (`rlif_data.schema.features_dict`), so anything else is
refused before any TFDS call sees the file. The walk is plain JSON: no TFDS
import.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

from rlif_data import errors
from rlif_data import schema as sc

# dataset_info.json can embed a feature proto too (TFDS reads it when no
# features.json exists), so it is walked by the same rule.
CHECKED_FILES = (sc.FEATURES_FILE, sc.DATASET_INFO_FILE)
CLASS_KEYS = ("pythonClassName", "python_class_name")
_PREFIX = "tensorflow_datasets.core.features."
# Exactly the classes `schema.features_dict` produces, for every schema
# (vector and camera, raw and PNG frames); tests/test_hostile_inputs.py checks
# that real recordings name nothing else.
ALLOWED_FEATURE_CLASSES = frozenset(_PREFIX + name for name in (
    "features_dict.FeaturesDict",
    "dataset_feature.Dataset",
    "tensor_feature.Tensor",
    "text_feature.Text",
    "class_label_feature.ClassLabel",
    "image_feature.Image",
))
# Keys of TFDS' legacy ``{"type": <class>, "content": ...}`` form and its proto
# class lookup; rlif-data never writes it, and it imports by name too.
LEGACY_KEYS = ("type", "proto_cls")


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(json path, key, value) of every class-naming key in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}/{key}"
            if key in CLASS_KEYS:
                yield where, key, value
            yield from _walk(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def disallowed_classes(config: Any) -> list[tuple[str, Any]]:
    """The feature classes a parsed features config names outside the allow-list.

    Args:
      config: the parsed JSON of ``features.json`` or ``dataset_info.json``.

    Returns:
      (json path, class name) pairs, in document order; empty if every class
      is one `ALLOWED_FEATURE_CLASSES` holds. A top-level legacy
      ``type``/``proto_cls`` entry is reported as well.
    """
    bad = []
    if isinstance(config, dict):
        for key in LEGACY_KEYS:
            if key in config:
                bad.append((f"/{key}", config[key]))
    for where, _, value in _walk(config, ""):
        if not isinstance(value, str) or value not in ALLOWED_FEATURE_CLASSES:
            bad.append((where, value))
    return bad


def check_features_json(directory: str) -> None:
    """Refuse a dataset whose feature files name classes rlif-data does not write.

    Call it before any TFDS call that rebuilds features from `directory`
    (``FeatureConnector.from_config``, ``builder_from_directory``,
    ``DatasetInfo.read_from_directory`` without features).

    Args:
      directory: a dataset directory (a recording, a job output, a version).

    Raises:
      UnsafeDataError: a class outside `ALLOWED_FEATURE_CLASSES`, naming the
        file, the JSON path and the class.
      CorruptRecordingError: a feature file that is not valid JSON.
    """
    for name in CHECKED_FILES:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                config = json.loads(f.read())
        except FileNotFoundError:
            continue  # nothing for TFDS to import from
        except ValueError as exc:
            raise errors.CorruptRecordingError(f"{path}: not valid JSON ({exc})") from None
        bad = disallowed_classes(config)
        if bad:
            where, cls = bad[0]
            raise errors.UnsafeDataError(
                f"{path}: feature class {cls!r} at {where} is not one rlif-data writes; "
                "refusing to let TFDS import it (the dataset was not written by rlif-data, "
                "or was tampered with)")
