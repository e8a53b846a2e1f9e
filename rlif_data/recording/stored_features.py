"""The flat signature of a stored ``features.json``, read as plain JSON (no TFDS).

`reader.check_stored_features` compares what a dataset stores with what this
code writes, leaf by leaf (``"steps/action" -> "float32(None, 6)"``). TFDS
gets the stored side by rebuilding its feature objects, which means importing
TFDS (~0.2 s) in every reading process. The few feature forms rlif-data
writes (`feature_config.ALLOWED_FEATURE_CLASSES`) are read here instead;
anything else in the file raises `Unrecognised`, and the caller asks TFDS, so
an unusual file is judged exactly as before.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping

import numpy as np

from rlif_data import schema as sc
from rlif_data.recording.feature_config import CLASS_KEYS

_CLASSES = "tensorflow_datasets.core.features."
# The JSON key of each feature kind and the class that writes it.
_KINDS = {
    "featuresDict": _CLASSES + "features_dict.FeaturesDict",
    "sequence": _CLASSES + "dataset_feature.Dataset",
    "tensor": _CLASSES + "tensor_feature.Tensor",
    "text": _CLASSES + "text_feature.Text",
    "classLabel": _CLASSES + "class_label_feature.ClassLabel",
    "image": _CLASSES + "image_feature.Image",
}
# Tensor dtypes as features.json spells them; all NumPy names too.
_DTYPES = frozenset(sc.INFO_DTYPES + ("uint32", "uint64"))
_BYTES = np.dtype(object)


class Unrecognised(Exception):
    """The file holds something this reader does not interpret; let TFDS read it."""


def signature(fields: Mapping[str, Any]) -> dict[str, str]:
    """``{flat key: "dtype(shape)"}`` of flat serialized fields. Pure.

    Args:
      fields: flat key -> anything with ``shape`` and ``np_dtype`` (a
        `schema.SerializedField` or a TFDS ``TensorInfo``).
    """
    return {key: f"{np.dtype(f.np_dtype).name}{tuple(f.shape)}" for key, f in fields.items()}


def _dims(tensor: Mapping[str, Any]) -> tuple[int, ...]:
    shape = tensor.get("shape") or {}
    try:
        if set(shape) - {"dimensions"}:
            raise ValueError(f"shape keys {sorted(shape)}")
        dims = tuple(int(d) for d in shape.get("dimensions", ()))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Unrecognised(f"a tensor shape ({exc})") from None
    if any(d < 0 for d in dims):
        raise Unrecognised("a tensor of unknown shape")
    return dims


def _leaves(node: Any, key: str, steps: tuple) -> Iterator[tuple[str, tuple, np.dtype]]:
    """(flat key, serialized shape, dtype) of every leaf under a features.json node."""
    if not isinstance(node, dict):
        raise Unrecognised(f"{key or 'top level'}: not an object")
    kinds = [k for k in node if k not in CLASS_KEYS]
    classes = [node[k] for k in CLASS_KEYS if k in node]
    if len(kinds) != 1 or kinds[0] not in _KINDS or classes != [_KINDS[kinds[0]]]:
        raise Unrecognised(f"{key or 'top level'}: keys {sorted(node)}")
    kind, body = kinds[0], node[kinds[0]]
    if not isinstance(body, dict):
        raise Unrecognised(f"{key}: {kind} is not an object")
    if kind == "featuresDict":
        if set(body) - {"features"} or not isinstance(body.get("features"), dict):
            raise Unrecognised(f"{key}: featuresDict keys {sorted(body)}")
        for name, child in body["features"].items():
            yield from _leaves(child, f"{key}/{name}" if key else name, steps)
    elif kind == "sequence":  # a TFDS Dataset: one more leading dimension, of any length
        if steps or set(body) - {"feature", "length"} or str(body.get("length", -1)) != "-1":
            raise Unrecognised(f"{key}: sequence {body}")
        yield from _leaves(body["feature"], key, (None,))
    elif kind == "tensor":
        dtype, encoding = body.get("dtype"), body.get("encoding", "none")
        if set(body) - {"dtype", "encoding", "shape"} or dtype not in _DTYPES:
            raise Unrecognised(f"{key}: tensor {body}")
        if encoding == "none":
            yield key, steps + _dims(body), np.dtype(dtype)
        elif encoding == "bytes":  # one bytes value per (step) tensor
            _dims(body)
            yield key, steps, _BYTES
        else:
            raise Unrecognised(f"{key}: tensor encoding {encoding!r}")
    elif kind == "text":
        if body:
            raise Unrecognised(f"{key}: text {body}")
        yield key, steps, _BYTES
    elif kind == "classLabel":
        if set(body) - {"numClasses"}:
            raise Unrecognised(f"{key}: classLabel {body}")
        yield key, steps, np.dtype(np.int64)
    else:  # image: one encoded (PNG) bytes value per frame
        if body.get("encodingFormat") != "png" or body.get("dtype", "uint8") != "uint8":
            raise Unrecognised(f"{key}: image {body}")
        _dims(body)
        yield key, steps, _BYTES


def config_signature(config: Any) -> dict[str, str]:
    """The flat signature (as `signature` has it) of a parsed features.json. Pure.

    Raises:
      Unrecognised: a feature form rlif-data does not write.
    """
    out = {}
    for key, shape, dtype in _leaves(config, "", ()):
        out[key] = f"{dtype.name}{shape}"
    return out


def read_signature(directory: str) -> dict[str, str]:
    """The flat signature of `directory`'s features.json.

    Raises:
      Unrecognised: no such file, not JSON, or a form rlif-data does not
        write (the caller hands the file to TFDS, which reports it as before).
    """
    try:
        with open(os.path.join(directory, sc.FEATURES_FILE), "rb") as f:
            config = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise Unrecognised(str(exc)) from None
    return config_signature(config)
