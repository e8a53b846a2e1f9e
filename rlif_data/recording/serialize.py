"""Serialise an episode to the tf.train.Example TFDS would write, without TFDS' per-step loop.

TFDS encodes a `Dataset` feature one step at a time in Python and then copies
every frame twice more while building the proto: ~1 ms per step for two
128x128 cameras, which is the whole recording budget of a 10 Hz robot loop.
Our episodes are already stacked arrays, so each feature becomes one list
extension. The output is the same Example that TFDS' `ExampleSerializer`
builds (tests compare them field by field), so TFDS and every reader see no
difference. PNG-encoded frames still go through TFDS. Neither direction
imports TFDS (`example_proto`).
"""

from __future__ import annotations

from collections import abc
from typing import Any, Iterator, Mapping, Optional

import numpy as np

from rlif_data import schema as sc
# The Example classes without TFDS or TensorFlow (0.2 s to seconds per process).
from rlif_data.recording import example_proto

_INFOS_PREFIX = f"{sc.STEPS}/{sc.INFOS}/"


def supports(schema: sc.EpisodeSchema) -> bool:
    """Whether the fast path covers this schema (everything but PNG frames)."""
    obs = schema.observation
    leaves = obs.values() if isinstance(obs, Mapping) else [obs]
    return not any(isinstance(s, sc.ImageSpec) and s.encoding == "png" for s in leaves)


def serialized_info(schema: sc.EpisodeSchema) -> dict[str, Any]:
    """The nested serialized info `serialize_episode` takes, built without TFDS.

    Equal (shapes and dtypes, key for key) to
    ``schema.features_dict(schema).get_serialized_info()``, from
    `schema.serialized_fields`.
    """
    return nest_flat(sc.serialized_fields(schema))


def nest_flat(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b": x}`` as ``{"a": {"b": x}}``, in the order of `flat`'s keys. Pure.

    Raises:
      ValueError: a key that is both a leaf and a prefix of another key.
    """
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key}: {part!r} is both a field and a group")
        if leaf in node:
            raise ValueError(f"{key}: given twice, or both a field and a group")
        node[leaf] = value
    return out


def _leaves(info: Any, value: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    # abc.Mapping, not typing.Mapping: the same test, 3x faster (34 per episode, measured).
    for key, sub in info.items():
        path = f"{prefix}/{key}" if prefix else key
        if type(sub) is dict or isinstance(sub, abc.Mapping):
            yield from _leaves(sub, value[key], path)
        else:
            yield path, sub, value[key]


def _frames_as_bytes(values: np.ndarray) -> list[bytes]:
    arr = np.ascontiguousarray(values, dtype=np.uint8)
    return [frame.tobytes() for frame in arr]


def bytes_fields(schema: sc.EpisodeSchema) -> dict[str, sc.ArraySpec]:
    """The byte-encoded step fields other than camera frames, by flat key, with their specs.

    The extra step fields (`schema.INFOS`) are stored as one raw-bytes value
    per step in their own dtype (`schema.info_feature`); the serialized info
    says only "bytes", so `serialize_episode` needs their dtype and shape from
    here.

    Returns:
      ``{"steps/infos/<name>": ArraySpec}``; empty for a schema without infos.
    """
    return {f"{sc.STEPS}/{sc.INFOS}/{name}": spec for name, spec in schema.infos.items()}


def _rows_as_bytes(key: str, values: Any, spec: sc.ArraySpec) -> list[bytes]:
    """One bytes value per step of an extra step field, checked against its spec.

    Raises:
      ValueError: another dtype (no silent cast: the reader decodes the bytes
        by the spec's dtype) or another per-step shape.
    """
    arr = np.asarray(values)
    if arr.dtype != np.dtype(spec.dtype):
        raise ValueError(f"{key}: dtype {arr.dtype} does not match {spec.dtype}")
    if arr.ndim < 1 or tuple(arr.shape[1:]) != tuple(spec.shape):
        raise ValueError(f"{key}: shape {arr.shape} does not match (T+1, *{tuple(spec.shape)})")
    arr = np.ascontiguousarray(arr)
    return [row.tobytes() for row in arr]


def serialize_episode(episode: Mapping[str, Any], serialized_info: Mapping[str, Any],
                      packed: Optional[Mapping[str, sc.ArraySpec]] = None) -> bytes:
    """The serialized tf.train.Example of one episode.

    Args:
      episode: ``{STEPS: {field: stacked array}, <metadata>: value}``.
      serialized_info: ``features.get_serialized_info()`` of the dataset.
      packed: `bytes_fields` of the dataset's schema (needed when it has
        extra step fields; other bytes values are uint8 camera frames).

    Raises:
      KeyError / ValueError: a field is missing or has values of the wrong kind.
    """
    example = example_proto.Example()
    feature_map = example.features.feature
    leaves = (_leaves(serialized_info, episode, "")
              if isinstance(serialized_info, abc.Mapping) else [("", serialized_info, episode)])
    for key, info, value in leaves:
        feature = feature_map[key]
        dtype = np.dtype(info.np_dtype)
        if dtype == object:  # strings: text metadata, raw frames or extra fields as bytes
            if packed and key in packed:
                feature.bytes_list.value.extend(_rows_as_bytes(key, value, packed[key]))
            elif key.startswith(_INFOS_PREFIX):
                raise ValueError(f"{key}: an extra step field; pass `bytes_fields(schema)` "
                                 "as `packed` to serialize it")
            elif isinstance(value, str):
                feature.bytes_list.value.append(value.encode("utf-8"))
            elif isinstance(value, bytes):
                feature.bytes_list.value.append(value)
            else:
                feature.bytes_list.value.extend(_frames_as_bytes(value))
        elif dtype.kind == "f":
            arr = np.asarray(value, dtype=dtype)
            _check_shape(key, arr, info)
            if arr.size:
                # Parsed from its wire form, not extended from a Python list: 12 us instead
                # of 2 ms for a 1001 x 17 column (measured), the same serialized bytes.
                feature.float_list.MergeFromString(float_list_wire(arr))
            else:
                feature.float_list.SetInParent()
        else:  # ints and bools are int64 lists in tf.train.Example
            arr = np.asarray(value)
            if arr.dtype.kind == "f":
                raise ValueError(f"{key}: float values for an integer feature")
            _check_shape(key, arr, info)
            # Parsed from its wire form like the floats: a list extend built a Python int
            # per value (~180 us of ~400 per 1000-step episode, measured); the same bytes.
            feature.int64_list.MergeFromString(int64_list_wire(arr))
    # Map entries in key order: the same episode gives the same bytes in any process
    # (a retried Beam bundle rewrites identical shards).
    return example.SerializeToString(deterministic=True)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def float_list_wire(values: np.ndarray) -> bytes:
    """The protobuf wire form of a ``tf.train.FloatList`` holding `values`. Pure.

    FloatList's only field is ``repeated float value = 1 [packed = true]``: one
    tag (field 1, length-delimited: 0x0A), the byte length as a varint, then
    the values as little-endian float32 -- the bytes numpy already holds.
    """
    if isinstance(values, np.ndarray) and values.dtype == _FLOAT32:  # usual: nothing to cast
        data = values.tobytes()
    else:
        with np.errstate(over="ignore"):  # float64 beyond float32's range -> inf, as protobuf casts
            data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return b"\x0a" + _varint(len(data)) + data


# Varint byte counts: a value takes one byte more at each of these bounds (7 bits a byte).
_VARINT_BOUNDS = np.array([1 << (7 * k) for k in range(1, 10)], np.uint64)
_UINT64_MASK = (1 << 64) - 1  # an int64's two's complement, as protobuf writes a negative one
_FLOAT32 = np.dtype("<f4")
# The continuation bits (0x80 on every byte but the last) of an n-byte varint, n = 0..10, as
# the two little-endian words `_spread` fills: bytes 0-7 and bytes 8-15.
_CONT_LOW = np.array([sum(0x80 << 8 * i for i in range(min(n - 1, 8))) for n in range(11)],
                     np.uint64)
_CONT_HIGH = np.array([sum(0x80 << 8 * i for i in range(max(n - 9, 0))) for n in range(11)],
                      np.uint64)


def _spread(words: np.ndarray) -> np.ndarray:
    """The low 56 bits of each uint64 as eight 7-bit groups, one per byte, low group in the
    low byte: a varint's bytes before the continuation bits. Pure; a new array."""
    # Halve the groups' spacing three times (28|28 bits, 14|14, 7|7): 12 array passes
    # instead of one (values x bytes) array (23 -> 12 us for 1001 timestamps, measured).
    x = words & np.uint64(0x0FFFFFFF)
    y = words & np.uint64(0x00FFFFFFF0000000)
    y <<= np.uint64(4)
    x |= y
    y = x & np.uint64(0x0FFFC0000FFFC000)
    x &= np.uint64(0x00003FFF00003FFF)
    y <<= np.uint64(2)
    x |= y
    y = x & np.uint64(0x3F803F803F803F80)
    x &= np.uint64(0x007F007F007F007F)
    y <<= np.uint64(1)
    x |= y
    return x


def varint_bytes(values: np.ndarray) -> bytes:
    """The protobuf varints of `values` (as int64), one after another: a packed field's body. Pure.

    Each value is written as protobuf writes an int64: 7 bits a byte, low
    bits first, the high bit set on every byte but the last; a negative
    number is the 10-byte varint of its two's complement. Vectorised: flags
    and small labels (0..127, the usual case) are their own bytes; other
    values are spread into 7-bit groups as little-endian words (`_spread`),
    of which each value keeps its own byte count.

    Args:
      values: integer or bool array of any shape (read in C order).

    Returns:
      The concatenated varints; empty for no values.

    Raises:
      ValueError / TypeError / OverflowError: values numpy cannot cast to int64.
    """
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8).tobytes()
    ints = arr.astype(np.int64, copy=False).ravel()
    if ints.size <= 1:  # empty, or a metadata scalar: Python is faster than array passes
        return _varint(int(ints[0]) & _UINT64_MASK) if ints.size else b""
    unsigned = ints.view(np.uint64)
    largest = int(unsigned.max())
    if largest < 0x80:  # flags, sources, small labels: each value is its own byte
        return unsigned.astype(np.uint8).tobytes()
    # Varint length grows with the unsigned value: equal ends mean equal lengths throughout.
    longest = (largest.bit_length() + 6) // 7
    uniform = max((int(unsigned.min()).bit_length() + 6) // 7, 1) == longest
    low = _spread(unsigned)
    if longest <= 8:
        words = low[:, None]
    else:  # beyond 56 bits (negatives): a second word for bytes 8-9
        words = np.stack([low, _spread(unsigned >> np.uint64(56))], axis=1)
    if uniform:  # timestamps of one era, all negatives: no per-value lengths
        words[:, 0] |= _CONT_LOW[longest]
        words[:, -1] |= _CONT_HIGH[longest]
        rows = words.astype("<u8", copy=False).view(np.uint8)
        return (rows if rows.shape[1] == longest else rows[:, :longest]).tobytes()
    counts = np.searchsorted(_VARINT_BOUNDS, unsigned, side="right") + 1
    words[:, 0] |= _CONT_LOW[counts]
    if longest > 8:
        words[:, 1] |= _CONT_HIGH[counts]
    rows = words.astype("<u8", copy=False).view(np.uint8)
    return rows[np.arange(rows.shape[1]) < counts[:, None]].tobytes()


def int64_list_wire(values: np.ndarray) -> bytes:
    """The protobuf wire form of a ``tf.train.Int64List`` holding `values`. Pure.

    Int64List's only field is ``repeated int64 value = 1 [packed = true]``:
    one tag (0x0A), the byte length as a varint, then the values' varints
    (`varint_bytes`). The same bytes as ``Int64List(value=...).SerializeToString()``
    (tests compare them), without a Python int per value.

    Args:
      values: integer or bool array of any shape.

    Returns:
      The serialized list; empty (as protobuf writes it) for no values.
    """
    body = varint_bytes(values)
    return b"\x0a" + _varint(len(body)) + body if body else b""


def _packed_body(message: Any) -> Optional[memoryview]:
    """The values of a one-field packed list message (FloatList, Int64List) as they are on
    the wire, or None when it holds none. Raises ValueError on another layout."""
    data = message.SerializeToString()
    if not data:
        return None
    if data[0] != 0x0A:
        raise ValueError(f"unexpected list encoding (first byte {data[0]:#x})")
    length, offset = 0, 1
    for shift in range(0, 64, 7):
        byte = data[offset]
        offset += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    if offset + length != len(data):
        raise ValueError("a list holds more than one run of values")
    return memoryview(data)[offset:]


def int_array(int64_list: Any, dtype: Any) -> np.ndarray:
    """The values of a parsed ``tf.train.Int64List`` as an array of `dtype`.

    Flags and labels (0..127) are one varint byte each on the wire, so NumPy
    reads them as bytes; anything else (timestamps, negatives) goes through
    the Python list as in TFDS' parser.
    """
    if len(int64_list.value) > 16:  # short lists (metadata scalars): the list is as fast
        body = _packed_body(int64_list)
        if body is not None:
            small = np.frombuffer(body, np.uint8)
            if len(small) == len(int64_list.value):  # every value took one byte: 0..127
                return small.astype(dtype)
    return np.array(int64_list.value, dtype=dtype)


def float_array(float_list: Any) -> np.ndarray:
    """The values of a parsed ``tf.train.FloatList`` as a float32 array, from its wire form.

    The inverse of `float_list_wire`: upb re-serialises the packed field as one
    length-delimited run of little-endian float32, which NumPy reads as it is
    -- instead of building a Python float per value (TFDS' parser: 1.7 s of the
    2.6 s it took to decode 1M state steps, measured).
    """
    body = _packed_body(float_list)
    if body is None:
        return np.zeros(0, np.float32)
    return np.frombuffer(body, "<f4").copy()


def parse_episode(raw: bytes, flat_info: Mapping[str, Any]) -> dict[str, Any]:
    """The flat ``{key: array or scalar}`` of one serialized episode; the inverse of
    `serialize_episode`, for the schemas it `supports`.

    The same values, dtypes and shapes as TFDS' ``ExampleParserNp`` before it
    nests them (tests compare the two); float columns are read from their wire
    form (`float_array`).

    Args:
      raw: the serialized tf.train.Example.
      flat_info: ``{flat key: info}`` of the dataset's serialized info, each
        with ``shape`` and ``np_dtype`` (`schema.serialized_fields`, or TFDS'
        flattened ``TensorInfo``; no ragged dimensions beyond the steps').

    Raises:
      KeyError: a feature of `flat_info` is missing from the record.
      ValueError: a feature of another kind or size than its info says.
    """
    feature_map = example_proto.Example.FromString(raw).features.feature
    out: dict[str, Any] = {}
    for key, info in flat_info.items():
        if key not in feature_map:
            raise KeyError(f"malformed record: no feature {key}")
        feature = feature_map[key]
        dtype = np.dtype(info.np_dtype)
        kind = feature.WhichOneof("kind")
        if kind == "float_list":
            values = float_array(feature.float_list)
            values = values if dtype == np.float32 else values.astype(dtype)
        elif kind == "int64_list":
            values = int_array(feature.int64_list, dtype)
        elif kind == "bytes_list":
            values = np.array(feature.bytes_list.value, dtype=dtype)
        else:
            raise ValueError(f"cannot convert {key!r} from proto to NumPy (no values)")
        shape = tuple(info.shape)
        if not shape:
            out[key] = values.item()
        else:
            out[key] = values.reshape([d if d is not None else -1 for d in shape])
    return out


def _check_shape(key: str, arr: np.ndarray, info: Any) -> None:
    want = info.shape
    if len(want) == arr.ndim:
        for w, a in zip(want, arr.shape):
            if w is not None and w != a:
                break
        else:
            return
    raise ValueError(f"{key}: shape {arr.shape} does not match {tuple(want)}")
