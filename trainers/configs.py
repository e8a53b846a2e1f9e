"""Learner configs: frozen dataclasses with the paper's values as defaults.

Every run saves its config next to its checkpoints (`to_json_dict`) so that a
result can be traced to the exact hyper-parameters that produced it.
`from_json_dict` is strict: unknown or missing keys and a different format
version are errors, never silently ignored.

`RLPDConfig` defaults are the RLPD reference config (Ball et al. 2023, as used
by RLIF; ``../shared/DESIGN.md``): 10 critics, min over a random 2, LayerNorm,
hidden (256, 256, 256), lr 3e-4, discount 0.99, tau 0.005, batch 256, offline
ratio 0.5, update-to-data ratio 20.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, TypeVar

CONFIG_FORMAT_VERSION = 1
_FORMAT_KEY = "format_version"
_KIND_KEY = "kind"

_C = TypeVar("_C")


def _check_positive_int(owner: str, name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is an int (not bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive int, got {value!r}")


def _check_positive_float(owner: str, name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}.{name} must be a finite number > 0, got {value!r}")


def _check_unit_interval(owner: str, name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{owner}.{name} must be a number in [0, 1], got {value!r}")


def _hidden_dims(owner: str, value: Any) -> tuple[int, ...]:
    """``value`` as a non-empty tuple of positive ints.

    Raises:
      ValueError: empty, not a sequence, or an entry is not a positive int.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{owner}.hidden_dims must be a sequence of ints, got {value!r}")
    dims = tuple(value)
    if not dims:
        raise ValueError(f"{owner}.hidden_dims must not be empty")
    for size in dims:
        _check_positive_int(owner, "hidden_dims entry", size)
    return dims


def _to_json_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as a JSON-ready dict with its kind and format version."""
    fields = {k: list(v) if isinstance(v, tuple) else v
              for k, v in dataclasses.asdict(config).items()}
    return {_KIND_KEY: type(config).__name__, _FORMAT_KEY: CONFIG_FORMAT_VERSION, **fields}


def _from_json_dict(cls: type[_C], data: Any) -> _C:
    """Inverse of `_to_json_dict` for ``cls``.

    Raises:
      ValueError: not a dict, another kind or format version, unknown or
        missing fields, or invalid values.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    data = dict(data)
    kind = data.pop(_KIND_KEY, None)
    if kind != cls.__name__:
        raise ValueError(f"config kind {kind!r} is not {cls.__name__!r}")
    version = data.pop(_FORMAT_KEY, None)
    if version != CONFIG_FORMAT_VERSION:
        raise ValueError(
            f"{cls.__name__} format_version {version!r} is not {CONFIG_FORMAT_VERSION}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {unknown}")
    missing = sorted(names - set(data))
    if missing:
        raise ValueError(f"{cls.__name__}: missing fields {missing}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class _JsonConfig:
    """`to_json_dict` / `from_json_dict` shared by the learner configs."""

    def to_json_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict, with its kind and format version."""
        return _to_json_dict(self)

    @classmethod
    def from_json_dict(cls, data: Any):
        """Inverse of `to_json_dict`.

        Args:
          data: a dict as written by `to_json_dict`.

        Returns:
          The config.

        Raises:
          ValueError: wrong kind or format version, unknown or missing
            fields, or invalid values.
        """
        return _from_json_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class RLPDConfig(_JsonConfig):
    """Hyper-parameters of the RLPD learner (SAC + LayerNorm critic ensemble).

    Attributes:
      actor_lr: Adam learning rate of the actor.
      critic_lr: Adam learning rate of the critic ensemble.
      temp_lr: Adam learning rate of the log-temperature.
      hidden_dims: hidden layer sizes, shared by the actor and each critic.
      discount: discount factor gamma.
      tau: soft target update rate (target <- tau * online + (1 - tau) * target).
      num_qs: critics in the ensemble.
      num_min_qs: size of the random subset of target critics whose minimum
        is the bootstrap value (RLPD: 2 of 10).
      critic_layer_norm: LayerNorm after each hidden Dense of the critics.
      init_temperature: initial entropy temperature alpha.
      target_entropy: entropy the temperature pushes the policy towards; None
        means ``-action_dim / 2`` (rlpd's default), see `resolved_target_entropy`.
      backup_entropy: subtract ``discount * alpha * log pi(a'|s')`` in the
        critic target (soft Bellman backup).
      utd_ratio: critic updates per environment step (U).
      batch_size: transitions per critic minibatch (B).
      offline_ratio: share of each batch drawn from the offline source.

    Raises:
      ValueError: a value is out of range (names the field and the value).
    """

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temp_lr: float = 3e-4
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    discount: float = 0.99
    tau: float = 0.005
    num_qs: int = 10
    num_min_qs: int = 2
    critic_layer_norm: bool = True
    init_temperature: float = 1.0
    target_entropy: Optional[float] = None
    backup_entropy: bool = True
    utd_ratio: int = 20
    batch_size: int = 256
    offline_ratio: float = 0.5

    def __post_init__(self):
        owner = type(self).__name__
        object.__setattr__(self, "hidden_dims", _hidden_dims(owner, self.hidden_dims))
        for name in ("actor_lr", "critic_lr", "temp_lr", "init_temperature"):
            _check_positive_float(owner, name, getattr(self, name))
        for name in ("num_qs", "num_min_qs", "utd_ratio", "batch_size"):
            _check_positive_int(owner, name, getattr(self, name))
        for name in ("discount", "tau", "offline_ratio"):
            _check_unit_interval(owner, name, getattr(self, name))
        if self.num_min_qs > self.num_qs:
            raise ValueError(
                f"{owner}.num_min_qs ({self.num_min_qs}) must be <= num_qs ({self.num_qs})")
        if self.target_entropy is not None and (
                isinstance(self.target_entropy, bool)
                or not isinstance(self.target_entropy, (int, float))
                or not math.isfinite(self.target_entropy)):
            raise ValueError(
                f"{owner}.target_entropy must be a finite number or None, "
                f"got {self.target_entropy!r}")
        for name in ("critic_layer_norm", "backup_entropy"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{owner}.{name} must be a bool, got {getattr(self, name)!r}")

    def resolved_target_entropy(self, action_dim: int) -> float:
        """The target entropy for ``action_dim``-dimensional actions.

        Args:
          action_dim: action size.

        Returns:
          ``target_entropy`` if set, else ``-action_dim / 2``.
        """
        if self.target_entropy is not None:
            return float(self.target_entropy)
        return -action_dim / 2.0


@dataclasses.dataclass(frozen=True)
class BCConfig(_JsonConfig):
    """Hyper-parameters of the BC learner (also HG-DAgger and DAgger).

    Attributes:
      hidden_dims: hidden layer sizes of the deterministic tanh MLP policy.
      lr: Adam learning rate.
      batch_size: transitions per update.

    Raises:
      ValueError: a value is out of range (names the field and the value).
    """

    hidden_dims: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    batch_size: int = 256

    def __post_init__(self):
        owner = type(self).__name__
        object.__setattr__(self, "hidden_dims", _hidden_dims(owner, self.hidden_dims))
        _check_positive_float(owner, "lr", self.lr)
        _check_positive_int(owner, "batch_size", self.batch_size)
