"""The ``tf.train.Example`` message classes, built from a descriptor made here.

Readers parse every record as a tf.train.Example. TensorFlow and TFDS ship
the generated classes, but importing either costs 0.2 s to seconds in every
process that reads episodes (a check worker, a job worker, each CLI
command). protobuf builds the same classes from a descriptor: the messages
below declare the fields and numbers of TensorFlow's
``tensorflow/core/example/{example,feature}.proto``, so the wire format is
identical and the same upb parser does the work (tests compare them with
TFDS' classes on real records, byte for byte).

They live in a private descriptor pool: TFDS' copy registers the same full
names in the default pool, and both may be loaded in one process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "tensorflow"
_F = descriptor_pb2.FieldDescriptorProto


def _field(message, name: str, number: int, type_: int, label: int = _F.LABEL_OPTIONAL,
           type_name: str = "", oneof: int | None = None, packed: bool = False) -> None:
    field = message.field.add(name=name, number=number, type=type_, label=label)
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    if packed:
        field.options.packed = True


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The messages of tf.train.Example, as a file descriptor (proto3, package tensorflow)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="rlif_data/recording/tf_example.proto", package=_PACKAGE, syntax="proto3")
    repeated = _F.LABEL_REPEATED
    for name, type_, packed in (("BytesList", _F.TYPE_BYTES, False),
                                ("FloatList", _F.TYPE_FLOAT, True),
                                ("Int64List", _F.TYPE_INT64, True)):
        _field(proto.message_type.add(name=name), "value", 1, type_, repeated, packed=packed)

    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, name, type_name in ((1, "bytes_list", "BytesList"),
                                    (2, "float_list", "FloatList"),
                                    (3, "int64_list", "Int64List")):
        _field(feature, name, number, _F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.{type_name}",
               oneof=0)

    features = proto.message_type.add(name="Features")
    # map<string, Feature> feature = 1: a repeated nested entry message marked map_entry.
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Feature")
    _field(features, "feature", 1, _F.TYPE_MESSAGE, repeated,
           type_name=f".{_PACKAGE}.Features.FeatureEntry")

    example = proto.message_type.add(name="Example")
    _field(example, "features", 1, _F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Features")
    return proto


def _classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in ("BytesList", "FloatList", "Int64List", "Feature", "Features", "Example")}


_CLASSES = _classes()
BytesList = _CLASSES["BytesList"]
FloatList = _CLASSES["FloatList"]
Int64List = _CLASSES["Int64List"]
Feature = _CLASSES["Feature"]
Features = _CLASSES["Features"]
Example = _CLASSES["Example"]
