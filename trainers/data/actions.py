"""Map environment actions to RLPD's [-1, 1] box and back. Pure (NumPy).

The tanh-squashed policy only produces values strictly inside (-1, 1), and its
log-density of an action involves atanh(a) and log(1 - a^2), which are
infinite at +-1. So normalised dataset actions are clipped to
[-1 + ACTION_EPS, 1 - ACTION_EPS] with ACTION_EPS = 1e-5 (what ikostrikov/rlpd
does to D4RL actions): atanh stays below 6.2 and the representable float32
values near 1 are about 6e-8 apart, so the clip is exact in float32 and bends
actions at the bounds by at most 1e-5 of the half-range.
"""

from __future__ import annotations

import numpy as np

ACTION_EPS = 1e-5


def _bounds(low, high, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
    low = np.broadcast_to(np.asarray(low, np.float64), (action_dim,))
    high = np.broadcast_to(np.asarray(high, np.float64), (action_dim,))
    bad = np.flatnonzero(~np.isfinite(low) | ~np.isfinite(high) | ~(high > low))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"action bounds of dimension {i} are [{low[i]}, {high[i]}]; normalising needs finite "
            "bounds with high > low (give the environment's action space bounds)")
    return low, high


def normalize_actions(actions: np.ndarray, low, high, eps: float = ACTION_EPS) -> np.ndarray:
    """Environment actions in [low, high] -> float32 in [-1 + eps, 1 - eps].

    Args:
      actions: [..., A] actions.
      low, high: [A] (or scalar) bounds of the action space.
      eps: margin kept from +-1 (module doc).

    Returns:
      The affine image of `actions` ([low, high] -> [-1, 1]), clipped.

    Raises:
      ValueError: bounds that are not finite or with high <= low.
    """
    actions = np.asarray(actions)
    low, high = _bounds(low, high, actions.shape[-1])
    scaled = 2.0 * (actions - low) / (high - low) - 1.0
    return np.clip(scaled, -1.0 + eps, 1.0 - eps).astype(np.float32)


def denormalize_actions(actions: np.ndarray, low, high) -> np.ndarray:
    """Policy actions in [-1, 1] -> float32 environment actions in [low, high].

    Args:
      actions: [..., A] actions; values outside [-1, 1] are clipped first.
      low, high: [A] (or scalar) bounds of the action space.

    Raises:
      ValueError: bounds that are not finite or with high <= low.
    """
    actions = np.asarray(actions)
    low, high = _bounds(low, high, actions.shape[-1])
    unit = np.clip(actions, -1.0, 1.0)
    return (low + (unit + 1.0) * 0.5 * (high - low)).astype(np.float32)
