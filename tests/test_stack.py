"""The pinned stack imports together (docs/design.md, section 7: rlds -> reverb -> TF 2.15)."""

import importlib.metadata as md


def test_rlds_imports_with_reverb_and_tf_215():
    import reverb  # rlds imports it at package import for pattern_map
    import rlds
    import tensorflow as tf

    assert tf.__version__.startswith("2.15.")
    assert hasattr(rlds, "transformations")
    assert hasattr(reverb, "Client")


def test_envlogger_is_the_pinned_release_with_a_backend_interface():
    from envlogger.backends import backend_writer

    assert md.version("envlogger") == "1.2"
    assert {"_record_step", "set_episode_metadata", "close"} <= set(
        backend_writer.BackendWriter.__abstractmethods__)


def test_tensorflow_metadata_pin_matches_protobuf_4():
    # tensorflow-metadata 1.21 needs protobuf 5; TF 2.15 needs protobuf 4.
    from tensorflow_metadata.proto.v0 import schema_pb2

    assert md.version("tensorflow-metadata") == "1.15.0"
    assert md.version("protobuf").startswith("4.")
    assert schema_pb2.Schema().ByteSize() == 0


def test_jax_flax_beam_tfds_import():
    import apache_beam
    import flax
    import jax
    import jax.numpy as jnp
    import tensorflow_datasets as tfds

    assert float(jax.jit(lambda x: (x * 2).sum())(jnp.ones(3))) == 6.0
    assert flax.__version__ and apache_beam.__version__ and tfds.__version__


def test_public_api_is_exported_and_import_is_light():
    import subprocess
    import sys

    # Heavy modules are checked before touching the lazy names, which load them.
    code = ("import sys, rlif_data; "
            "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'jax', 'envlogger') "
            "if m in sys.modules]; "
            "missing = [n for n in rlif_data.__all__ if not hasattr(rlif_data, n)]; "
            "print(missing, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
