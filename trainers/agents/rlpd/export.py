"""From a trained `RLPDLearner` to deployable artifacts.

* The actor becomes rlif_data's MLP policy (``TanhMLP``): the actor's
  ``Dense_0 .. Dense_{n-1}`` trunk is copied as it is, its ``mean`` head
  becomes ``Dense_n`` and ``log_std`` is dropped. The policy then computes
  ``low + (tanh(mean) + 1) / 2 * (high - low)``: the actor's deterministic
  action rescaled from [-1, 1] to the environment's bounds.
* The critic ensemble is saved on its own (`save_critic` / `load_critic`), in
  a directory that needs no trainer state to load, so that recording code can
  read a Q^ref for value-based intervention.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from rlif_data.fsutil import write_json_atomic
from trainers.networks import LOG_STD_HEAD, MEAN_HEAD, CriticEnsemble

PathLike = Union[str, os.PathLike]

CRITIC_CONFIG_FILENAME = "critic_config.json"
CRITIC_PARAMS_DIRNAME = "params"
CRITIC_FORMAT_VERSION = 1
_CRITIC_KIND = "critic_ensemble"


def export_actor_params(agent: Any) -> dict[str, Any]:
    """The actor's mean path as variables of rlif_data's ``TanhMLP``.

    Args:
      agent: an `RLPDLearner`.

    Returns:
      ``{"params": {"Dense_0": ..., ..., "Dense_n": <mean head>}}`` with
      ``n = len(hidden_dims)``; the arrays are shared, not copied.

    Raises:
      ValueError: the actor params do not have the expected layout.
    """
    params = dict(agent.actor_params)
    n = len(agent.config.hidden_dims)
    expected = {f"Dense_{i}" for i in range(n)} | {MEAN_HEAD, LOG_STD_HEAD}
    if set(params) != expected:
        raise ValueError(f"actor params have layers {sorted(params)}, expected {sorted(expected)}")
    exported = {f"Dense_{i}": params[f"Dense_{i}"] for i in range(n)}
    exported[f"Dense_{n}"] = params[MEAN_HEAD]
    return {"params": exported}


def export_policy(agent: Any, action_low: Optional[Sequence[float]] = None,
                  action_high: Optional[Sequence[float]] = None) -> tuple[Any, dict[str, Any]]:
    """The actor as an MLP policy config plus variables, for ``save_mlp_policy``.

    Args:
      agent: an `RLPDLearner`.
      action_low: the environment's lower action bounds; None means -1.
      action_high: the environment's upper action bounds; None means +1.

    Returns:
      ``(MLPPolicyConfig, variables)``; ``make_mlp_module(config).apply``
      with these variables gives the agent's `eval_actions` rescaled to the
      bounds.

    Raises:
      ValueError: the bounds do not match the action size or are not ordered.
    """
    from rlif_data.policies import MLPPolicyConfig

    config = MLPPolicyConfig(
        obs_dim=agent.obs_dim,
        action_dim=agent.action_dim,
        hidden_dims=tuple(agent.config.hidden_dims),
        action_low=None if action_low is None else tuple(float(v) for v in action_low),
        action_high=None if action_high is None else tuple(float(v) for v in action_high),
    )
    return config, export_actor_params(agent)


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


def critic_spec(agent: Any, action_low: Optional[Sequence[float]] = None,
                action_high: Optional[Sequence[float]] = None) -> CriticSpec:
    """The `CriticSpec` of an `RLPDLearner`'s critic ensemble.

    Args:
      agent: the learner.
      action_low: the environment's lower action bounds; None means -1.
      action_high: the environment's upper action bounds; None means +1.

    Returns:
      The spec.

    Raises:
      ValueError: the bounds are invalid.
    """
    cfg = agent.config
    return CriticSpec(agent.obs_dim, agent.action_dim, tuple(cfg.hidden_dims), cfg.num_qs,
                      cfg.critic_layer_norm,
                      None if action_low is None else tuple(action_low),
                      None if action_high is None else tuple(action_high))


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


def save_critic(directory: PathLike, agent: Any, action_low: Optional[Sequence[float]] = None,
                action_high: Optional[Sequence[float]] = None, overwrite: bool = False) -> Path:
    """Write the agent's critic ensemble: orbax params plus ``critic_config.json``.

    The JSON is written last and atomically, so a directory that has it holds
    complete params.

    Args:
      directory: local directory to create or reuse.
      agent: an `RLPDLearner`.
      action_low: the environment's lower action bounds; None means -1.
      action_high: the environment's upper action bounds; None means +1.
      overwrite: replace a critic already in ``directory``.

    Returns:
      The absolute directory path.

    Raises:
      FileExistsError: ``directory`` already holds a critic and not ``overwrite``.
      ValueError: the bounds are invalid (nothing is written).
    """
    import orbax.checkpoint as ocp

    spec = critic_spec(agent, action_low, action_high)
    root = Path(directory).expanduser().resolve()
    params_dir = root / CRITIC_PARAMS_DIRNAME
    config_path = root / CRITIC_CONFIG_FILENAME
    if not overwrite and (params_dir.exists() or config_path.exists()):
        raise FileExistsError(f"{root} already holds a critic; pass overwrite=True to replace it")
    root.mkdir(parents=True, exist_ok=True)
    if config_path.exists():
        config_path.unlink()  # an old config must not vouch for half-written params
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(params_dir, agent.critic_params, force=overwrite)
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
