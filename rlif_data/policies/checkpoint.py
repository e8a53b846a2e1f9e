"""The MLP policy checkpoint format: orbax params plus ``policy_config.json``.

Layout of a policy directory::

    <dir>/params/              orbax StandardCheckpointer of the flax variables
    <dir>/policy_config.json   `MLPPolicyConfig.to_json_dict()`, written last

The config is written last, atomically and fsynced, so a directory that has
it holds complete params. Loading checks the stored array shapes against the
config before restoring, so a mismatch is one clear error, not an orbax
traceback. Trainers export their actor with `save_mlp_policy`; recording
loads it with `load_mlp_policy` and never imports trainer code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from rlif_data.fsutil import write_json_atomic
from rlif_data.policies.base import PathLike
from rlif_data.policies.mlp import MLPPolicy, MLPPolicyConfig, init_mlp_policy_params

CONFIG_FILENAME = "policy_config.json"
PARAMS_DIRNAME = "params"


def save_mlp_policy(directory: PathLike, config: MLPPolicyConfig, params: Any,
                    overwrite: bool = False) -> Path:
    """Write an MLP policy: orbax params plus ``policy_config.json``.

    Args:
      directory: local directory to create or reuse.
      config: the policy architecture.
      params: flax variables matching ``config``.
      overwrite: replace an existing policy in ``directory``.

    Returns:
      The absolute directory path.

    Raises:
      FileExistsError: ``directory`` already holds a policy and not ``overwrite``.
      ValueError: ``params`` do not match ``config``.
    """
    root = Path(directory).expanduser().resolve()
    params_dir = root / PARAMS_DIRNAME
    config_path = root / CONFIG_FILENAME
    if not overwrite and (params_dir.exists() or config_path.exists()):
        raise FileExistsError(f"{root} already holds a policy; pass overwrite=True to replace it")
    check_params_match(params, abstract_params(config), root)
    root.mkdir(parents=True, exist_ok=True)
    if config_path.exists():
        config_path.unlink()  # an old config must not vouch for half-written params
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(params_dir, params, force=overwrite)
    write_json_atomic(config_path, config.to_json_dict(), indent=2)
    return root


def load_mlp_policy(directory: PathLike) -> MLPPolicy:
    """Read a policy written by `save_mlp_policy`.

    Args:
      directory: the policy directory.

    Returns:
      An `MLPPolicy` with the restored params.

    Raises:
      FileNotFoundError: the directory, its ``policy_config.json`` or its
        ``params`` checkpoint is missing; the message names the path.
      ValueError: the config is not valid JSON or not a valid config, or the
        params do not match it; the message names the path.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"policy directory {root} does not exist")
    config = read_config(root / CONFIG_FILENAME)
    params = _restore_params(root / PARAMS_DIRNAME, config)
    return MLPPolicy(config, params)


def read_config(path: Path) -> MLPPolicyConfig:
    """Parse a ``policy_config.json``.

    Args:
      path: the config file.

    Returns:
      The config.

    Raises:
      FileNotFoundError: ``path`` does not exist (the message names it).
      ValueError: not valid JSON or not a valid config (the message names ``path``).
    """
    if not path.is_file():
        raise FileNotFoundError(f"policy config {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"policy config {path} is not valid JSON: {e}") from e
    try:
        return MLPPolicyConfig.from_json_dict(data)
    except ValueError as e:
        raise ValueError(f"policy config {path} is invalid: {e}") from e


def _restore_params(params_dir: Path, config: MLPPolicyConfig) -> Any:
    """Restore orbax params after checking them against ``config``."""
    if not params_dir.is_dir():
        raise FileNotFoundError(f"policy params checkpoint {params_dir} does not exist")
    abstract = abstract_params(config)
    # Compare against the stored metadata first: a failed orbax restore leaves
    # cancelled-task tracebacks in the log that bury the real cause.
    check_params_match(_stored_metadata(params_dir), abstract, params_dir)
    # Restore onto this process's default device: explicit sharding lets a
    # checkpoint written on a GPU load on a CPU-only machine and vice versa.
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(params_dir, target)


def _stored_metadata(params_dir: Path) -> Any:
    """The tree of stored array metadata (shape, dtype) of an orbax checkpoint."""
    try:
        with ocp.StandardCheckpointer() as ckptr:
            metadata = ckptr.metadata(params_dir)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"policy params checkpoint {params_dir}: {e}") from e
    except Exception as e:  # orbax raises assorted types for damaged checkpoints
        raise ValueError(f"policy params checkpoint {params_dir} is unreadable: {e}") from e
    # orbax 0.11 wraps the tree in TreeMetadata; older versions return it bare.
    return getattr(metadata, "tree", metadata)


def abstract_params(config: MLPPolicyConfig) -> Any:
    """Shapes and dtypes of the params ``config`` implies, without allocating them.

    Args:
      config: the policy architecture.

    Returns:
      A pytree of ``jax.ShapeDtypeStruct`` shaped like `init_mlp_policy_params`.
    """
    return jax.eval_shape(lambda: init_mlp_policy_params(config, 0))


def check_params_match(params: Any, abstract: Any, where: Path) -> None:
    """Check that two param trees have the same leaf paths, shapes and dtypes.

    Args:
      params: the params (or stored metadata) to check.
      abstract: the expected tree, e.g. from `abstract_params`.
      where: the path the error message names.

    Raises:
      ValueError: naming ``where`` and every leaf that differs.
    """
    got, want = _shape_table(params), _shape_table(abstract)
    if got == want:
        return
    diffs = [f"{k}: expected {want.get(k, 'nothing')}, got {got.get(k, 'nothing')}"
             for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    raise ValueError(f"policy params for {where} do not match the config: {'; '.join(diffs)}")


def _shape_table(tree: Any) -> dict[str, str]:
    """Leaf path -> "shape dtype" for every array-like leaf of ``tree``."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): f"{tuple(leaf.shape)} {np.dtype(leaf.dtype)}"
            for path, leaf in leaves}
