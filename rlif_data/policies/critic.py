"""A critic ensemble as a deployable artifact: Q^ref for value-based intervention.

The value-based intervention model asks a reference critic whether the
learner's action is worse than the expert's. Recording must load that critic
without importing trainer code, so the network and its checkpoint format live
here, as the actor's do (`rlif_data.policies.mlp`, `.checkpoint`); the RLPD
learner in `trainers/` builds its critic from these same modules.

Layout of a critic directory (``<policy dir>/critic/`` when a training run
exports one)::

    critic_config.json   obs/action sizes, action bounds, hidden sizes, ensemble size
    params/              orbax checkpoint of the ensemble's variables

The critic was trained on actions scaled to [-1, 1]; `CriticQFunction`
rescales environment actions with the stored bounds before asking it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlif_data.fsutil import write_json_atomic

CRITIC_DIRNAME = "critic"
CRITIC_CONFIG_FILENAME = "critic_config.json"
CRITIC_PARAMS_DIRNAME = "params"
CRITIC_FORMAT_VERSION = 1
# Name of the vmapped member module inside `CriticEnsemble`'s params.
ENSEMBLE_SCOPE = "members"
# Glorot-uniform kernels, as RLPD initialises its MLPs (Flax's default is LeCun-normal).
default_kernel_init = nn.initializers.xavier_uniform()


class MLP(nn.Module):
    """Hidden layers ``Dense -> [LayerNorm] -> ReLU``, every layer activated.

    Attributes:
      hidden_dims: sizes of the hidden layers.
      layer_norm: LayerNorm between each Dense and its ReLU (RLPD's critic).
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

    The members' params are stacked on a leading axis of size ``num_qs`` (Flax
    ``nn.vmap`` over params), so one forward pass evaluates every critic and a
    subset is an index into that axis.

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
class CriticConfig:
    """What it takes to rebuild a saved critic ensemble.

    Attributes:
      obs_dim: observation size.
      action_dim: action size.
      hidden_dims: hidden layer sizes of each member.
      num_qs: ensemble size.
      layer_norm: LayerNorm after each hidden Dense.
      action_low: environment action lower bounds (mapped to -1).
      action_high: environment action upper bounds (mapped to +1).
    """

    obs_dim: int
    action_dim: int
    hidden_dims: tuple[int, ...]
    num_qs: int
    layer_norm: bool
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    def module(self) -> CriticEnsemble:
        """The Flax module of this config."""
        return CriticEnsemble(hidden_dims=tuple(self.hidden_dims), num_qs=self.num_qs,
                              layer_norm=self.layer_norm)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready, with the format version."""
        data = {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}
        return {"format_version": CRITIC_FORMAT_VERSION, **data}

    @classmethod
    def from_json_dict(cls, data: Any, where: str) -> "CriticConfig":
        """Inverse of `to_json_dict`.

        Raises:
          ValueError: wrong format version or fields; the message names `where`.
        """
        if not isinstance(data, dict) or data.get("format_version") != CRITIC_FORMAT_VERSION:
            raise ValueError(f"{where}: not a critic config of format {CRITIC_FORMAT_VERSION}")
        data = {k: v for k, v in data.items() if k != "format_version"}
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            raise ValueError(f"{where}: critic config fields {sorted(data)} are not {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def save_critic(directory: str, config: CriticConfig, params: Any) -> str:
    """Write a critic ensemble (orbax params, then its config atomically, last).

    Args:
      directory: the critic directory to create (must not hold a critic).
      config: the architecture and action bounds.
      params: the ensemble's variables (``{"params": ...}``).

    Returns:
      The absolute directory.

    Raises:
      FileExistsError: the directory already holds a critic.
    """
    import orbax.checkpoint as ocp

    root = Path(directory).expanduser().resolve()
    if (root / CRITIC_CONFIG_FILENAME).exists():
        raise FileExistsError(f"{root} already holds a critic")
    root.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(root / CRITIC_PARAMS_DIRNAME, params, force=True)
    write_json_atomic(str(root / CRITIC_CONFIG_FILENAME), config.to_json_dict())
    return str(root)


class CriticQFunction:
    """Q^ref(observation, action) = mean over the ensemble, for environment actions.

    Args:
      config: the critic's config.
      params: its variables.
    """

    def __init__(self, config: CriticConfig, params: Any):
        self.config = config
        self.params = params
        self._low = np.asarray(config.action_low, np.float32)
        self._high = np.asarray(config.action_high, np.float32)
        module = config.module()
        self._q = jax.jit(lambda p, o, a: jnp.mean(module.apply(p, o, a), axis=0))

    def __call__(self, observation: Any, action: Any) -> float:
        """The ensemble mean for one observation and one action in environment units."""
        obs = np.asarray(observation, np.float32).reshape(1, -1)
        act = np.asarray(action, np.float32).reshape(1, -1)
        scaled = 2.0 * (act - self._low) / np.maximum(self._high - self._low, 1e-12) - 1.0
        return float(self._q(self.params, obs, np.clip(scaled, -1.0, 1.0))[0])


def _critic_dir(path: str) -> Optional[str]:
    """The critic directory inside `path` (a critic, policy or training-run directory)."""
    for candidate in (path, os.path.join(path, CRITIC_DIRNAME),
                      os.path.join(path, "policy", CRITIC_DIRNAME)):
        if os.path.isfile(os.path.join(candidate, CRITIC_CONFIG_FILENAME)):
            return candidate
    return None


def load_critic(directory: str) -> CriticQFunction:
    """Load a critic saved by `save_critic`.

    Raises:
      FileNotFoundError: no critic there.
      ValueError: the config or params are invalid; the message names the path.
    """
    import orbax.checkpoint as ocp

    found = _critic_dir(directory)
    if found is None:
        raise FileNotFoundError(
            f"{directory} holds no critic ({CRITIC_CONFIG_FILENAME}); give a training run "
            "directory, its policy/ directory or a published policy that was trained with RLPD")
    config_path = os.path.join(found, CRITIC_CONFIG_FILENAME)
    try:
        with open(config_path, encoding="utf-8") as f:
            config = CriticConfig.from_json_dict(json.load(f), config_path)
    except ValueError as exc:
        raise ValueError(f"{config_path} is invalid: {exc}") from None
    module = config.module()
    abstract = jax.eval_shape(lambda: module.init(
        jax.random.PRNGKey(0), jnp.zeros((1, config.obs_dim)), jnp.zeros((1, config.action_dim))))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
    try:
        with ocp.StandardCheckpointer() as ckptr:
            params = ckptr.restore(os.path.join(found, CRITIC_PARAMS_DIRNAME), target)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise ValueError(f"critic params in {found} do not load ({str(exc).splitlines()[0][:160]})"
                         ) from None
    return CriticQFunction(config, params)


def load_q_function(spec: str) -> CriticQFunction:
    """Q^ref from a directory or anything a policy ref resolver maps to one (registry refs).

    Raises:
      FileNotFoundError / ValueError: see `load_critic`.
    """
    from rlif_data.policies.spec import resolve_checkpoint

    directory = resolve_checkpoint(spec) or spec
    return load_critic(directory)
