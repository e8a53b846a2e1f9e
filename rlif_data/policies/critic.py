"""The critic ensemble as a deployable artifact: Q^ref for value-based intervention.

The value-based intervention model asks a reference critic whether the
learner's action is worse than the expert's. Recording must load that critic
without importing trainer code, so the network and its on-disk format live
here, as the actor's do (`rlif_data.policies.mlp`, `.checkpoint`); the RLPD
learner in `trainers/` builds its critic from these same modules.

Layout of a critic directory (``<policy dir>/critic/`` when a training run
exports one)::

    critic_config.json   kind, format version, sizes, the environment's action bounds
    params/              orbax checkpoint of the ensemble's params

The critics were trained on actions scaled to [-1, 1]; `CriticFunction` takes
environment actions and rescales them with the stored bounds.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlif_data.fsutil import write_json_atomic

PathLike = Union[str, os.PathLike]

CRITIC_DIRNAME = "critic"
CRITIC_CONFIG_FILENAME = "critic_config.json"
CRITIC_PARAMS_DIRNAME = "params"
CRITIC_FORMAT_VERSION = 1
_CRITIC_KIND = "critic_ensemble"
# Where a `train --out` run keeps its exported policy (and the critic inside it).
_RUN_POLICY_DIRNAME = "policy"

# Glorot-uniform kernels, as RLPD initialises its MLPs (Flax's default is
# LeCun-normal); biases start at zero either way.
default_kernel_init = nn.initializers.xavier_uniform()


class MLP(nn.Module):
    """Hidden layers ``Dense -> [LayerNorm] -> ReLU``, every layer activated.

    The Dense layers are Flax's auto-named ``Dense_0 .. Dense_{n-1}``, which is
    what makes an actor trunk line up with rlif_data's ``TanhMLP`` policy.

    Attributes:
      hidden_dims: sizes of the hidden layers.
      layer_norm: insert LayerNorm between each Dense and its ReLU (the RLPD
        critic); off for the actor so its trunk stays a plain TanhMLP trunk.
    """

    hidden_dims: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """Features of shape (..., hidden_dims[-1]) for inputs (..., in_dim)."""
        for size in self.hidden_dims:
            x = nn.Dense(size, kernel_init=default_kernel_init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return x


# Name of the vmapped member module inside `CriticEnsemble`'s params.
ENSEMBLE_SCOPE = "members"


class QNetwork(nn.Module):
    """One critic: Q(s, a) from an MLP over the concatenated ``[s, a]``.

    Attributes:
      hidden_dims: hidden layer sizes.
      layer_norm: LayerNorm after each hidden Dense (RLPD's critic).
    """

    hidden_dims: Sequence[int]
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Q values of shape (batch,) for (batch, obs_dim) and (batch, action_dim)."""
        x = jnp.concatenate([observations, actions], axis=-1)
        x = MLP(self.hidden_dims, layer_norm=self.layer_norm)(x)
        return nn.Dense(1, kernel_init=default_kernel_init)(x)[..., 0]


class CriticEnsemble(nn.Module):
    """``num_qs`` `QNetwork`s with independent params, evaluated together.

    Attributes:
      hidden_dims: hidden layer sizes of each critic.
      num_qs: ensemble size; the leading axis of every param and of the output.
      layer_norm: LayerNorm after each hidden Dense.
    """

    hidden_dims: Sequence[int]
    num_qs: int
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Q values of shape (num_qs, batch); every member sees the same inputs."""
        members = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_qs,
        )
        return members(self.hidden_dims, self.layer_norm, name=ENSEMBLE_SCOPE)(
            observations, actions)


@dataclasses.dataclass(frozen=True)
class CriticSpec:
    """Architecture and action bounds of a saved critic ensemble.

    The critics were trained on actions in [-1, 1]; ``action_low`` /
    ``action_high`` are the environment's bounds, so that a `CriticFunction`
    takes environment actions (as a recorder sees them) and normalises them.

    Attributes:
      obs_dim: observation size.
      action_dim: action size.
      hidden_dims: hidden layer sizes of each critic.
      num_qs: ensemble size.
      layer_norm: LayerNorm after each hidden Dense.
      action_low: the environment's lower action bounds (-1 when not given).
      action_high: the environment's upper action bounds (+1 when not given).

    Raises:
      ValueError: a size is not a positive int, or the bounds are not
        finite, ordered and of length ``action_dim``.
    """

    obs_dim: int
    action_dim: int
    hidden_dims: tuple[int, ...]
    num_qs: int
    layer_norm: bool
    action_low: Optional[tuple[float, ...]] = None
    action_high: Optional[tuple[float, ...]] = None

    def __post_init__(self):
        sizes = [self.obs_dim, self.action_dim, self.num_qs, *self.hidden_dims]
        if not self.hidden_dims or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
            raise ValueError(f"critic sizes must be positive ints, got obs_dim={self.obs_dim!r}, "
                             f"action_dim={self.action_dim!r}, num_qs={self.num_qs!r}, "
                             f"hidden_dims={self.hidden_dims!r}")
        if not isinstance(self.layer_norm, bool):
            raise ValueError(f"layer_norm must be a bool, got {self.layer_norm!r}")
        object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        low = -np.ones(self.action_dim) if self.action_low is None else self.action_low
        high = np.ones(self.action_dim) if self.action_high is None else self.action_high
        try:
            low = np.asarray(low, np.float64)
            high = np.asarray(high, np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"action bounds must be numbers: {e}") from e
        if (low.shape != (self.action_dim,) or high.shape != (self.action_dim,)
                or not (np.isfinite(low).all() and np.isfinite(high).all())
                or np.any(low >= high)):
            raise ValueError(f"action bounds must be finite, low < high, length "
                             f"{self.action_dim}; got low={low.tolist()}, high={high.tolist()}")
        object.__setattr__(self, "action_low", tuple(float(v) for v in low))
        object.__setattr__(self, "action_high", tuple(float(v) for v in high))

    def module(self) -> CriticEnsemble:
        """The Flax module of this architecture."""
        return CriticEnsemble(self.hidden_dims, self.num_qs, self.layer_norm)

    def abstract_params(self) -> Any:
        """Shapes and dtypes of the params, without allocating them."""
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.action_dim), jnp.float32)
        return jax.eval_shape(
            lambda: self.module().init(jax.random.PRNGKey(0), obs, act)["params"])

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict with kind and format version."""
        fields = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in dataclasses.asdict(self).items()}
        return {"kind": _CRITIC_KIND, "format_version": CRITIC_FORMAT_VERSION, **fields}

    @classmethod
    def from_json_dict(cls, data: Any) -> "CriticSpec":
        """Inverse of `to_json_dict`.

        Raises:
          ValueError: another kind or format version, unknown or missing
            fields, or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if data.pop("kind", None) != _CRITIC_KIND:
            raise ValueError(f"not a {_CRITIC_KIND} config")
        version = data.pop("format_version", None)
        if version != CRITIC_FORMAT_VERSION:
            raise ValueError(f"format_version {version!r} is not {CRITIC_FORMAT_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            raise ValueError(f"fields {sorted(data)} are not {sorted(names)}")
        if not isinstance(data["hidden_dims"], list):
            raise ValueError(f"hidden_dims must be a list, got {data['hidden_dims']!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class CriticFunction:
    """A restored critic ensemble: ``critic(obs, env_actions) -> (num_qs, N)`` values.

    Args:
      spec: the architecture and action bounds.
      params: the ensemble params matching ``spec``.
    """

    def __init__(self, spec: CriticSpec, params: Any):
        self.spec = spec
        self.params = params
        low = jnp.asarray(spec.action_low, jnp.float32)
        scale = jnp.asarray(spec.action_high, jnp.float32) - low

        def apply(p, obs, env_actions):
            # The critics saw [-1, 1] actions; map the environment's box onto it.
            actions = 2.0 * (env_actions - low) / scale - 1.0
            return spec.module().apply({"params": p}, obs, actions)

        self._apply = jax.jit(apply)

    def __call__(self, observations: Any, actions: Any) -> np.ndarray:
        """Every member's Q values.

        Args:
          observations: (N, obs_dim) or (obs_dim,).
          actions: environment actions (within the spec's bounds), (N,
            action_dim) or (action_dim,).

        Returns:
          float32 array (num_qs, N), or (num_qs,) for unbatched inputs.

        Raises:
          ValueError: a last axis does not match the spec.
        """
        obs = np.asarray(observations, np.float32)
        act = np.asarray(actions, np.float32)
        if obs.shape[-1:] != (self.spec.obs_dim,) or act.shape[-1:] != (self.spec.action_dim,):
            raise ValueError(
                f"critic expects observations (..., {self.spec.obs_dim}) and actions "
                f"(..., {self.spec.action_dim}), got {obs.shape} and {act.shape}")
        return np.asarray(self._apply(self.params, obs, act))

    def mean_q(self, observations: Any, actions: Any) -> np.ndarray:
        """The ensemble mean (Q^ref of value-based intervention), shape (N,) or ()."""
        return self(observations, actions).mean(axis=0)


def save_critic(directory: PathLike, spec: CriticSpec, params: Any,
                overwrite: bool = False) -> Path:
    """Write a critic ensemble: orbax params plus ``critic_config.json``.

    The JSON is written last and atomically, so a directory that has it holds
    complete params.

    Args:
      directory: local directory to create or reuse.
      spec: the architecture and the environment's action bounds.
      params: the ensemble's params (the ``params`` collection, leading axis num_qs).
      overwrite: replace a critic already in ``directory``.

    Returns:
      The absolute directory path.

    Raises:
      FileExistsError: ``directory`` already holds a critic and not ``overwrite``.
      ValueError: ``params`` do not match ``spec`` (nothing is written).
    """
    import orbax.checkpoint as ocp

    root = Path(directory).expanduser().resolve()
    params_dir = root / CRITIC_PARAMS_DIRNAME
    config_path = root / CRITIC_CONFIG_FILENAME
    if not overwrite and (params_dir.exists() or config_path.exists()):
        raise FileExistsError(f"{root} already holds a critic; pass overwrite=True to replace it")
    if _shapes(params) != _shapes(spec.abstract_params()):
        raise ValueError(f"critic params do not match the spec {spec.to_json_dict()}")
    root.mkdir(parents=True, exist_ok=True)
    if config_path.exists():
        config_path.unlink()  # an old config must not vouch for half-written params
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(params_dir, params, force=overwrite)
    write_json_atomic(config_path, spec.to_json_dict())
    return root


def load_critic(directory: PathLike) -> CriticFunction:
    """Read a critic written by `save_critic`.

    Args:
      directory: the critic directory.

    Returns:
      A `CriticFunction`.

    Raises:
      FileNotFoundError: the directory, its config or its params are missing.
      ValueError: the config is invalid or the stored params do not match it;
        the message names the path.
    """
    import orbax.checkpoint as ocp

    root = Path(directory).expanduser().resolve()
    config_path = root / CRITIC_CONFIG_FILENAME
    params_dir = root / CRITIC_PARAMS_DIRNAME
    if not config_path.is_file():
        raise FileNotFoundError(f"critic config {config_path} does not exist")
    try:
        spec = CriticSpec.from_json_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as e:
        raise ValueError(f"critic config {config_path} is invalid: {e}") from e
    if not params_dir.is_dir():
        raise FileNotFoundError(f"critic params checkpoint {params_dir} does not exist")
    abstract = spec.abstract_params()
    with ocp.StandardCheckpointer() as ckptr:
        stored = ckptr.metadata(params_dir)
        stored = getattr(stored, "tree", stored)  # orbax 0.11 wraps the tree
        if _shapes(stored) != _shapes(abstract):
            raise ValueError(f"critic params in {params_dir} do not match {config_path}")
        # Explicit single-device sharding: a checkpoint written on a GPU loads on a CPU.
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        target = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
        params = ckptr.restore(params_dir, target)
    return CriticFunction(spec, params)


def _shapes(tree: Any) -> dict[str, tuple]:
    """Leaf path -> (shape, dtype name) of every array-like leaf."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(p): (tuple(x.shape), np.dtype(x.dtype).name) for p, x in leaves}


def find_critic(path: PathLike) -> Optional[str]:
    """The critic directory in `path`: a critic, a policy or a `train --out` run directory."""
    path = os.fspath(path)
    for candidate in (path, os.path.join(path, CRITIC_DIRNAME),
                      os.path.join(path, _RUN_POLICY_DIRNAME, CRITIC_DIRNAME)):
        if os.path.isfile(os.path.join(candidate, CRITIC_CONFIG_FILENAME)):
            return candidate
    return None


def load_q_function(spec: str):
    """Q^ref(observation, action) -> float, the ensemble mean, for value-based intervention.

    Args:
      spec: a critic, policy or training-run directory, or a published
        policy ref (``name@tag``, resolved in the default registry).

    Raises:
      FileNotFoundError: no critic there (the message says what to give).
      ValueError: the critic's config or params are invalid.
    """
    from rlif_data.policies.spec import resolve_checkpoint

    base = resolve_checkpoint(spec) or spec
    found = find_critic(base)
    if found is None:
        raise FileNotFoundError(
            f"{spec} holds no critic ({CRITIC_CONFIG_FILENAME}); give a `train --algo rlpd` run "
            "directory, its policy/ directory or a policy published from such a run")
    critic = load_critic(found)

    def q_ref(observation: Any, action: Any) -> float:
        return float(critic.mean_q(observation, action))

    q_ref.critic = critic
    return q_ref
