"""LQR experts for the pushed inverted pendulum: one strong, three weak.

The CPU experiment needs experts of known, graded quality. All four are
linear state feedback u = -K x from a discrete Riccati equation over the
finite-difference linearisation of the env step
(`rlif_data.envs.pushed_pendulum.linearize`), clipped to the action bounds:

* ``lqr-aggressive`` -- the reference: a heavy pole-angle weight, so it
  catches large pushes (about 93 % of 1000-step episodes survive).
* ``lqr`` -- the plain expert: a heavy cart-centring weight, which spends
  authority on the cart and drops more pushes (about 45-58 %).
* ``lqr-cap:1.5`` / ``lqr-cap:0.7`` -- the plain expert with its action
  clipped to +-1.5 / +-0.7: systematically weak (about 34-43 % / 10-15 %).
  A learner that imitates it inherits the cap; one that learns from the
  intervention reward need not.

(Ranges: seeds 0-99 and pooled over 400 seeds; benchmarks/pendulum_experts.py.)

Weights and caps come from `PushedPendulumSetup`, so a run records them in
lineage. The gain math is pure numpy/scipy; only building a gain for an env
id touches MuJoCo (through the env module, imported on use).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np
import scipy.linalg

from rlif_data.policies.base import _as_bounds

AGGRESSIVE = "aggressive"
"""Controller kind of the reference expert (`PushedPendulumSetup.aggressive_*` weights)."""

PLAIN = "plain"
"""Controller kind of the plain expert (`PushedPendulumSetup.lqr_*` weights)."""

LQR_SPECS: dict[str, tuple[str, Optional[float]]] = {
    "lqr-aggressive": (AGGRESSIVE, None),
    "lqr": (PLAIN, None),
    "lqr-cap:1.5": (PLAIN, 1.5),
    "lqr-cap:0.7": (PLAIN, 0.7),
}
"""Policy spec -> (controller kind, action cap or None)."""

PENDULUM_ENV_IDS = ("InvertedPendulumPushed-v5", "InvertedPendulum-v5")
"""Env ids with the cart-pole model the gains are computed for."""


def lqr_gain(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The infinite-horizon discrete LQR gain K (u = -K x).

    Minimises sum_t x_t' Q x_t + u_t' R u_t subject to x_{t+1} = A x_t + B u_t.

    Args:
      a: (n, n) state matrix.
      b: (n, m) input matrix.
      q: (n, n) positive semi-definite state cost.
      r: (m, m) positive definite action cost.

    Returns:
      K of shape (m, n), float64.

    Raises:
      ValueError: shapes do not fit, or (A, B) is not stabilisable for these
        costs (the Riccati solver fails).
    """
    a, b, q, r = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (a, b, q, r))
    n, m = b.shape
    if a.shape != (n, n) or q.shape != (n, n) or r.shape != (m, m):
        raise ValueError(
            f"LQR shapes do not fit: A {a.shape}, B {b.shape}, Q {q.shape}, R {r.shape}")
    try:
        p = scipy.linalg.solve_discrete_are(a, b, q, r)
    except (np.linalg.LinAlgError, ValueError) as e:
        raise ValueError(f"no stabilising LQR solution for these A, B, Q, R: {e}") from e
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


def closed_loop_spectral_radius(a: np.ndarray, b: np.ndarray, k: np.ndarray) -> float:
    """Largest |eigenvalue| of A - B K; below 1 means u = -K x stabilises (A, B).

    Args:
      a: (n, n) state matrix.
      b: (n, m) input matrix.
      k: (m, n) feedback gain.

    Returns:
      The spectral radius of the closed-loop matrix.
    """
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(a) - np.asarray(b) @ np.asarray(k)))))


def feedback_action(gain: np.ndarray, observation: np.ndarray, low: np.ndarray,
                    high: np.ndarray) -> np.ndarray:
    """-K x clipped to [low, high], as float32.

    Args:
      gain: (m, n) feedback gain.
      observation: (n,) state.
      low: (m,) lower action bound.
      high: (m,) upper action bound.

    Returns:
      The (m,) float32 action.
    """
    action = -np.asarray(gain, dtype=np.float64) @ np.asarray(observation, dtype=np.float64)
    # Clip after the float32 cast: rounding must not leave the box.
    return np.clip(action.astype(np.float32), low, high)


class LQRPolicy:
    """Deterministic linear feedback u = clip(-K x), optionally capped.

    Args:
      gain: (m, n) feedback gain.
      action_low: lower action bounds of the env.
      action_high: upper action bounds of the env.
      cap: if set, actions are also clipped to [-cap, cap] (a deliberately
        weakened expert).

    Raises:
      ValueError: the gain is not 2-D finite with m rows, the bounds are
        inconsistent, or the cap is not a finite number > 0.
    """

    def __init__(self, gain: Any, action_low: Any, action_high: Any,
                 cap: Optional[float] = None):
        low, high = _as_bounds(action_low, action_high)
        gain = np.array(gain, dtype=np.float64, ndmin=2)
        if gain.ndim != 2 or gain.shape[0] != low.shape[0] or not np.all(np.isfinite(gain)):
            raise ValueError(f"LQR gain must be a finite ({low.shape[0]}, n) matrix, "
                             f"got shape {gain.shape}")
        if cap is not None:
            if not np.isfinite(cap) or cap <= 0:
                raise ValueError(f"LQR action cap must be a finite number > 0, got {cap!r}")
            low = np.maximum(low, np.float32(-cap))
            high = np.minimum(high, np.float32(cap))
        self.gain = gain
        self.cap = cap
        self.action_low, self.action_high = low, high

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The action for one observation.

        Args:
          observation: the (n,) state, e.g. the pendulum's
            [cart pos, pole angle, cart vel, pole angular vel].

        Returns:
          A float32 action within the bounds (and the cap).

        Raises:
          ValueError: the observation does not have n entries.
        """
        obs = np.asarray(observation, dtype=np.float64)
        if obs.shape != (self.gain.shape[1],):
            raise ValueError(f"LQRPolicy expects an observation of shape "
                             f"({self.gain.shape[1]},), got {obs.shape}")
        return feedback_action(self.gain, obs, self.action_low, self.action_high)


def weights(setup: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The (Q, R) cost matrices of a controller kind in a setup.

    Args:
      setup: a `PushedPendulumSetup`.
      kind: `AGGRESSIVE` or `PLAIN`.

    Returns:
      (Q (4, 4), R (1, 1)) as float64.

    Raises:
      ValueError: an unknown kind.
    """
    if kind == AGGRESSIVE:
        q, r = setup.aggressive_state_weights, setup.aggressive_action_weight
    elif kind == PLAIN:
        q, r = setup.lqr_state_weights, setup.lqr_action_weight
    else:
        raise ValueError(f"LQR kind must be {AGGRESSIVE!r} or {PLAIN!r}, got {kind!r}")
    return np.diag(np.asarray(q, dtype=np.float64)), np.array([[float(r)]])


@functools.lru_cache(maxsize=8)
def _pendulum_model(eps: float) -> tuple[tuple[tuple[float, ...], ...], ...]:
    """(A, B) of the pendulum env step as nested tuples (cached: immutable)."""
    import gymnasium as gym

    from rlif_data.envs.pushed_pendulum import linearize

    env = gym.make("InvertedPendulum-v5")
    try:
        a, b = linearize(env, eps)
    finally:
        env.close()
    return tuple(map(tuple, a)), tuple(map(tuple, b))


def pendulum_linear_model(setup: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of one pendulum env step around upright, from MuJoCo finite differences.

    Args:
      setup: a `PushedPendulumSetup` (its `fd_eps`); None means the default setup.

    Returns:
      (A (4, 4), B (4, 1)) float64 arrays (fresh copies).
    """
    setup = _default_setup() if setup is None else setup
    a, b = _pendulum_model(float(setup.fd_eps))
    return np.array(a), np.array(b)


def pendulum_expert(kind: str, action_low: Any = -3.0, action_high: Any = 3.0,
                    cap: Optional[float] = None, setup: Any = None) -> LQRPolicy:
    """An LQR expert for the (pushed) inverted pendulum.

    Args:
      kind: `AGGRESSIVE` or `PLAIN` (which weights of `setup`).
      action_low: env action lower bound (InvertedPendulum: -3).
      action_high: env action upper bound (InvertedPendulum: 3).
      cap: optional action cap (see `LQRPolicy`).
      setup: a `PushedPendulumSetup`; None means the default setup.

    Returns:
      The `LQRPolicy`.

    Raises:
      ValueError: an unknown kind or a bad cap.
    """
    setup = _default_setup() if setup is None else setup
    q, r = weights(setup, kind)
    a, b = pendulum_linear_model(setup)
    return LQRPolicy(lqr_gain(a, b, q, r), action_low, action_high, cap=cap)


def from_spec_context(ctx: Any) -> Any:
    """Spec factory for the names in `LQR_SPECS` (see `rlif_data.policies.spec`).

    Args:
      ctx: the `SpecContext` (its spec, env id, bounds and state key are used).

    Returns:
      The LQR policy, fed the state part of dict observations if needed.

    Raises:
      UnknownEnvironmentError: the env is not an inverted pendulum.
      ValueError: the spec is not in `LQR_SPECS`.
    """
    from rlif_data import errors

    if ctx.spec not in LQR_SPECS:
        raise ValueError(f"LQR spec must be one of {tuple(LQR_SPECS)}, got {ctx.spec!r}")
    if ctx.env_id not in PENDULUM_ENV_IDS:
        raise errors.UnknownEnvironmentError(
            f"policy {ctx.spec!r} is an LQR for {' / '.join(PENDULUM_ENV_IDS)}, "
            f"not {ctx.env_id!r}; pick one of those envs or another expert")
    kind, cap = LQR_SPECS[ctx.spec]
    return ctx.on_state(pendulum_expert(kind, ctx.action_low, ctx.action_high, cap=cap))


def _default_setup() -> Any:
    from rlif_data.envs.pushed_pendulum import DEFAULT_SETUP

    return DEFAULT_SETUP
