"""Small HDF5 files in D4RL's exact layout, with knobs to break them.

Layout written (as the d4rl v2 files): float32 ``observations`` [N, obs_dim],
``actions`` [N, act_dim], ``rewards`` [N]; bool ``terminals`` and ``timeouts``
[N]; optional float32 ``next_observations`` [N, obs_dim]; ``infos/qpos``,
``infos/qvel`` and a string ``metadata/algorithm`` that readers must ignore.

Values are chosen so a test can tell rows apart by value:
  observations[i, j] = i + j / 100
  next_observations[i] = observations[i] + 1000  (never equal to observations[i + 1])
  actions[i, j] = -(i + j / 100) / 10_000  (inside every env's action bounds)
  rewards[i] = i / 2
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Mapping, Optional, Sequence, Union

import h5py
import numpy as np

# How each episode ends in the written flags.
TERMINAL = "terminal"  # terminals[last] = True
TIMEOUT = "timeout"  # timeouts[last] = True
BOTH = "both"  # both flags on the last row
CUT = "cut"  # neither flag (only meaningful for the last episode)

NEXT_OBS_OFFSET = 1000.0


@dataclasses.dataclass
class FakeD4RL:
    """A written fake file and the arrays it holds, by D4RL key."""

    path: pathlib.Path
    data: dict[str, np.ndarray]


def d4rl_arrays(
    episode_lengths: Sequence[int] = (4, 3, 5),
    end_kinds: Optional[Sequence[str]] = None,
    obs_dim: int = 3,
    act_dim: int = 2,
) -> dict[str, np.ndarray]:
    """The arrays of a well-formed D4RL file.

    Args:
      episode_lengths: rows of each episode.
      end_kinds: how each episode ends (TERMINAL, TIMEOUT, BOTH, CUT);
        default TIMEOUT for all.

    Returns:
      ``{d4rl key: array}`` including timeouts and next_observations.
    """
    if end_kinds is None:
        end_kinds = [TIMEOUT] * len(episode_lengths)
    assert len(end_kinds) == len(episode_lengths)
    n = int(sum(episode_lengths))
    rows = np.arange(n, dtype=np.float32)[:, None]
    observations = rows + np.arange(obs_dim, dtype=np.float32)[None, :] / 100
    terminals = np.zeros(n, dtype=np.bool_)
    timeouts = np.zeros(n, dtype=np.bool_)
    last = -1
    for length, kind in zip(episode_lengths, end_kinds):
        last += length
        if kind in (TERMINAL, BOTH):
            terminals[last] = True
        if kind in (TIMEOUT, BOTH):
            timeouts[last] = True
    return {
        "observations": observations.astype(np.float32),
        "next_observations": (observations + NEXT_OBS_OFFSET).astype(np.float32),
        # Scaled into [-1, 0]: the jobs' output check refuses actions outside the
        # env's action space (Hopper, Walker2d, HalfCheetah: [-1, 1]).
        "actions": (-(rows + np.arange(act_dim, dtype=np.float32)[None, :] / 100)
                    / 10_000).astype(np.float32),
        "rewards": (np.arange(n, dtype=np.float32) / 2).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
        "infos/qpos": np.zeros((n, obs_dim + 1), dtype=np.float32),
        "infos/qvel": np.zeros((n, obs_dim), dtype=np.float32),
    }


def write_d4rl_file(
    path: Union[str, os.PathLike],
    *,
    episode_lengths: Sequence[int] = (4, 3, 5),
    end_kinds: Optional[Sequence[str]] = None,
    obs_dim: int = 3,
    act_dim: int = 2,
    with_timeouts: bool = True,
    with_next_observations: bool = True,
    last_episode_cut: bool = False,
    nan_reward_row: Optional[int] = None,
    non_finite: Optional[tuple[str, int, float]] = None,
    mismatched_key: Optional[str] = None,
    missing_key: Optional[str] = None,
    column_flags: bool = False,
    override: Optional[Mapping[str, np.ndarray]] = None,
) -> FakeD4RL:
    """Write a small D4RL-layout HDF5 file.

    Args:
      path: the file to create.
      episode_lengths, end_kinds, obs_dim, act_dim: see `d4rl_arrays`.
      with_timeouts: False writes no ``timeouts`` key (D4RL v0 files).
      with_next_observations: False writes no ``next_observations`` key.
      last_episode_cut: the last episode gets neither flag (recording stopped).
      nan_reward_row: put NaN in ``rewards`` at this row.
      non_finite: (key, row, value) to put e.g. inf in any float key.
      mismatched_key: write this key with one row fewer.
      missing_key: do not write this key.
      column_flags: write rewards/terminals/timeouts as [N, 1] (old files).
      override: arrays replacing (or adding) keys, written as given.

    Returns:
      The path and the arrays written.
    """
    if end_kinds is None:
        end_kinds = [TIMEOUT] * len(episode_lengths)
    end_kinds = list(end_kinds)
    if last_episode_cut:
        end_kinds[-1] = CUT
    data = d4rl_arrays(episode_lengths, end_kinds, obs_dim, act_dim)
    if not with_timeouts:
        del data["timeouts"]
    if not with_next_observations:
        del data["next_observations"]
    if nan_reward_row is not None:
        data["rewards"][nan_reward_row] = np.nan
    if non_finite is not None:
        key, row, value = non_finite
        data[key][row] = value
    if column_flags:
        for key in ("rewards", "terminals", "timeouts"):
            if key in data:
                data[key] = data[key][:, None]
    if mismatched_key is not None:
        data[mismatched_key] = data[mismatched_key][:-1]
    if missing_key is not None:
        del data[missing_key]
    if override:
        data.update({k: np.asarray(v) for k, v in override.items()})
    path = pathlib.Path(path)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f.create_dataset(key, data=value)
        f.create_dataset("metadata/algorithm", data=np.bytes_("SAC"))
    return FakeD4RL(path, data)


def truncate_file(path: Union[str, os.PathLike], fraction: float = 0.5) -> None:
    """Cut a file to ``fraction`` of its bytes, as an interrupted download does."""
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[: int(len(data) * fraction)])
