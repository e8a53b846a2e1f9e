"""The deterministic tanh-squashed MLP policy: its config, Flax module and callable.

`TanhMLP` is a module-level ``flax.linen`` class, so trainers can import,
subclass and ``apply`` it by name; importing this module therefore imports
flax and JAX (``rlif_data.policies`` itself loads it lazily). The on-disk
format lives in `rlif_data.policies.checkpoint`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlif_data.policies.base import _as_bounds

MLP_FORMAT_VERSION = 1
"""Version of `MLPPolicyConfig.to_json_dict`; bump it with every change of meaning."""


def _check_positive_int(name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is an int (not bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclasses.dataclass(frozen=True)
class MLPPolicyConfig:
    """Architecture of a deterministic tanh-squashed MLP policy.

    Hidden layers use ReLU; the output ``tanh`` is rescaled from [-1, 1] to
    ``[action_low, action_high]``.

    Args:
      obs_dim: observation size.
      action_dim: action size.
      hidden_dims: sizes of the hidden layers.
      action_low: lower action bounds; None means -1 in every dimension.
      action_high: upper action bounds; None means +1 in every dimension.

    Raises:
      ValueError: a size is not a positive int, or the bounds do not match
        ``action_dim`` or are not ordered.
    """

    obs_dim: int
    action_dim: int
    hidden_dims: tuple[int, ...] = (256, 256)
    action_low: Optional[tuple[float, ...]] = None
    action_high: Optional[tuple[float, ...]] = None

    def __post_init__(self):
        for name in ("obs_dim", "action_dim"):
            _check_positive_int(name, getattr(self, name))
        hidden = tuple(self.hidden_dims)
        for size in hidden:
            _check_positive_int("hidden_dims entry", size)
        # Frozen: normalise through object.__setattr__ so equality and JSON
        # round trips see plain tuples of Python numbers.
        object.__setattr__(self, "hidden_dims", tuple(int(h) for h in hidden))
        low = (-1.0,) * self.action_dim if self.action_low is None else self.action_low
        high = (1.0,) * self.action_dim if self.action_high is None else self.action_high
        low_arr, high_arr = _as_bounds(low, high)
        if low_arr.shape != (self.action_dim,):
            raise ValueError(
                f"action bounds have shape {low_arr.shape}, expected ({self.action_dim},)"
            )
        object.__setattr__(self, "action_low", tuple(float(v) for v in low_arr))
        object.__setattr__(self, "action_high", tuple(float(v) for v in high_arr))

    @classmethod
    def for_spaces(cls, observation_space: Any, action_space: Any,
                   hidden_dims: Sequence[int] = (256, 256)) -> "MLPPolicyConfig":
        """A config for Gymnasium Box spaces.

        Args:
          observation_space: a 1-D Box.
          action_space: a 1-D Box whose bounds become the action bounds.
          hidden_dims: hidden layer sizes.

        Returns:
          The matching `MLPPolicyConfig`.
        """
        return cls(
            obs_dim=int(np.prod(observation_space.shape)),
            action_dim=int(np.prod(action_space.shape)),
            hidden_dims=tuple(hidden_dims),
            action_low=tuple(np.asarray(action_space.low, dtype=np.float64).ravel()),
            action_high=tuple(np.asarray(action_space.high, dtype=np.float64).ravel()),
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict, with a format version.

        Returns:
          ``{"format_version": MLP_FORMAT_VERSION, <field>: <value>, ...}`` with
          tuples as lists.
        """
        fields = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in dataclasses.asdict(self).items()}
        return {"format_version": MLP_FORMAT_VERSION, **fields}

    @classmethod
    def from_json_dict(cls, data: Any) -> "MLPPolicyConfig":
        """Inverse of `to_json_dict`.

        Args:
          data: the parsed JSON object.

        Returns:
          The config it describes.

        Raises:
          ValueError: the dict is not an object, has a wrong format version,
            unknown or missing fields, or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("format_version", None)
        if version != MLP_FORMAT_VERSION:
            raise ValueError(f"format_version {version!r} is not {MLP_FORMAT_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) - names:
            raise ValueError(f"unknown fields {sorted(set(data) - names)}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except TypeError as e:  # missing required field or wrong value type
            raise ValueError(str(e)) from e


class TanhMLP(nn.Module):
    """ReLU MLP with a tanh head rescaled to the action bounds.

    Attributes:
      hidden_dims: sizes of the hidden layers.
      action_dim: action size.
      action_low: lower action bounds (one per dimension).
      action_high: upper action bounds (one per dimension).
    """

    hidden_dims: tuple[int, ...]
    action_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    @nn.compact
    def __call__(self, obs):
        """Actions of shape (..., action_dim) for observations of shape (..., obs_dim)."""
        x = obs
        for size in self.hidden_dims:
            x = nn.relu(nn.Dense(size)(x))
        x = jnp.tanh(nn.Dense(self.action_dim)(x))
        low = jnp.asarray(self.action_low, dtype=x.dtype)
        high = jnp.asarray(self.action_high, dtype=x.dtype)
        return low + (x + 1.0) * 0.5 * (high - low)


def make_mlp_module(config: MLPPolicyConfig) -> TanhMLP:
    """The flax.linen module of a config (for trainers that need ``apply``).

    Args:
      config: the policy architecture.

    Returns:
      A `TanhMLP`; ``module.apply(params, obs)`` maps observations of shape
      (..., obs_dim) to actions of shape (..., action_dim).
    """
    return TanhMLP(
        hidden_dims=config.hidden_dims,
        action_dim=config.action_dim,
        action_low=config.action_low,
        action_high=config.action_high,
    )


def init_mlp_policy_params(config: MLPPolicyConfig, seed: int = 0) -> Any:
    """Random initial variables of the MLP.

    Args:
      config: the policy architecture.
      seed: seed of the ``jax.random`` key.

    Returns:
      The flax variables dict ``{"params": ...}`` accepted by `MLPPolicy`,
      `save_mlp_policy` and ``make_mlp_module(config).apply``.
    """
    dummy = jnp.zeros((1, config.obs_dim), dtype=jnp.float32)
    return make_mlp_module(config).init(jax.random.PRNGKey(seed), dummy)


class MLPPolicy:
    """A callable deterministic MLP policy.

    The forward pass is jitted once when the policy is built.

    Args:
      config: the policy architecture.
      params: flax variables as returned by `init_mlp_policy_params`.
    """

    def __init__(self, config: MLPPolicyConfig, params: Any):
        self.config = config
        self.params = params
        self._forward = jax.jit(make_mlp_module(config).apply)
        self._low = np.asarray(config.action_low, dtype=np.float32)
        self._high = np.asarray(config.action_high, dtype=np.float32)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The action for one observation (or a batch).

        Args:
          observation: shape (obs_dim,) or (batch, obs_dim).

        Returns:
          float32 action(s) of shape (action_dim,) or (batch, action_dim).

        Raises:
          ValueError: the last axis is not ``obs_dim``.
        """
        obs = np.asarray(observation, dtype=np.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.config.obs_dim:
            raise ValueError(
                f"MLPPolicy expects observations of shape ({self.config.obs_dim},) or "
                f"(batch, {self.config.obs_dim}), got {obs.shape}"
            )
        action = np.asarray(self._forward(self.params, obs), dtype=np.float32)
        # tanh can round to exactly +-1 and the affine map can overshoot by an ulp.
        return np.clip(action, self._low, self._high)
