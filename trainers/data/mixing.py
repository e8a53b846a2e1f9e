"""The RLPD sampler: every batch mixes an offline and an online source at a fixed ratio.

RLPD ("symmetric sampling") draws each batch half from the offline data and
half from the online replay buffer. ikostrikov/rlpd does this by sampling
half a batch from each and interleaving them, so only a ratio of 0.5 works
(rlpd#4). Here each batch of size B takes exactly ``k = floor(ratio * B + 0.5)``
rows from the offline source and ``B - k`` from the online one, for any ratio in
[0, 1]; with `num_batches` = U, the U batches are laid out one after another
([U * B] rows, each block of B with its k offline rows first), so an agent
reshapes to [U, B] for its `lax.scan` over critic steps.

A source is anything with ``len()``, ``take(indices) -> batch dict``,
``observation_spec``, ``action_dim`` and ``reward_mode``: a loaded `Transitions`
(offline, possibly memory-mapped) or a `ReplayBuffer` (online, growing).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Protocol

import numpy as np

from trainers.data.errors import EmptyTransitionsError, SpecMismatchError
from trainers.data.transitions import check_reward_mode, describe_spec

DEFAULT_OFFLINE_RATIO = 0.5


class Source(Protocol):
    """What the sampler needs from a data source."""

    reward_mode: str

    def __len__(self) -> int:
        """Transitions it holds now."""

    def take(self, indices: np.ndarray) -> dict[str, Any]:
        """Rows `indices` as a batch dict."""

    @property
    def observation_spec(self) -> Any:
        """Per-row observation shapes and dtypes (`transitions.observation_spec`)."""

    @property
    def action_dim(self) -> int:
        """Size of the action vector."""


def offline_rows(offline_ratio: float, batch_size: int) -> int:
    """Rows of a batch of `batch_size` drawn from the offline source (round half up). Pure.

    Raises:
      ValueError: ratio outside [0, 1] or batch_size < 1.
    """
    if not (0.0 <= offline_ratio <= 1.0) or math.isnan(offline_ratio):
        raise ValueError(f"offline_ratio must be in [0, 1], got {offline_ratio}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(math.floor(offline_ratio * batch_size + 0.5))


def interleave_blocks(offline: Any, online: Any, num_batches: int) -> Any:
    """[U*k] offline and [U*(B-k)] online rows -> [U*B] rows. Pure.

    Each block of B rows holds its k offline rows, then its B-k online rows.
    """
    if isinstance(offline, dict):
        return {key: interleave_blocks(offline[key], online[key], num_batches) for key in offline}
    off = offline.reshape((num_batches, -1) + offline.shape[1:])
    on = online.reshape((num_batches, -1) + online.shape[1:])
    joined = np.concatenate([off, on], axis=1)
    return joined.reshape((-1,) + joined.shape[2:])


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """A source as the sampler reports it for logging.

    Attributes:
      name: e.g. "offline" or a dataset ref.
      reward: the source's reward mode ("env", "rlif", "zero").
      size: transitions it held when `info()` was called.
    """

    name: str
    reward: str
    size: int


class MixedSampler:
    """Draws batches with a fixed share of offline rows (RLPD's symmetric sampling at ratio 0.5).

    Args:
      offline: the offline source (may be None when `offline_ratio` is 0).
      online: the online source (may be None when `offline_ratio` is 1).
      offline_ratio: share of each batch drawn from `offline`, in [0, 1].
      offline_name, online_name: names for logs and errors (e.g. the dataset refs).

    Raises:
      ValueError: bad ratio, or a source missing that the ratio needs.
      SpecMismatchError: the sources differ in observation spec or action size.
    """

    def __init__(self, offline: Optional[Source], online: Optional[Source], *,
                 offline_ratio: float = DEFAULT_OFFLINE_RATIO, offline_name: str = "offline",
                 online_name: str = "online"):
        offline_rows(offline_ratio, 1)  # validates the ratio
        if offline is None and offline_ratio > 0:
            raise ValueError(f"offline_ratio {offline_ratio} needs an offline source")
        if online is None and offline_ratio < 1:
            raise ValueError(f"offline_ratio {offline_ratio} needs an online source")
        for source in (offline, online):
            if source is not None:
                check_reward_mode(source.reward_mode)
        if offline is not None and online is not None and (
                (offline.observation_spec, offline.action_dim)
                != (online.observation_spec, online.action_dim)):
            raise SpecMismatchError(
                f"offline source {offline_name} has observations "
                f"{describe_spec(offline.observation_spec)}, actions ({offline.action_dim},) but "
                f"online source {online_name} has observations "
                f"{describe_spec(online.observation_spec)}, actions ({online.action_dim},); "
                "use data of one environment")
        self.offline, self.online = offline, online
        self.offline_ratio = float(offline_ratio)
        self.offline_name, self.online_name = offline_name, online_name

    def info(self) -> dict[str, Any]:
        """Ratio and sources (name, reward mode, size), JSON-able, for run logs."""
        out: dict[str, Any] = {"offline_ratio": self.offline_ratio}
        for role, source, name in (("offline", self.offline, self.offline_name),
                                   ("online", self.online, self.online_name)):
            out[role] = None if source is None else dataclasses.asdict(
                SourceInfo(name, source.reward_mode, len(source)))
        return out

    def _draw(self, source: Optional[Source], name: str, rng: np.random.Generator,
              rows: int) -> dict[str, Any]:
        size = 0 if source is None else len(source)
        if size == 0:
            raise EmptyTransitionsError(
                f"cannot sample {rows} rows from {name}: it is empty (offline_ratio "
                f"{self.offline_ratio}); fill it first or change the ratio")
        indices = rng.integers(0, size, size=rows)
        return source.take(indices)

    def sample(self, rng: np.random.Generator, batch_size: int,
               num_batches: int = 1) -> dict[str, Any]:
        """`num_batches` batches of `batch_size`, concatenated: [num_batches * batch_size, ...].

        Each block of `batch_size` rows holds `offline_rows(ratio, batch_size)`
        offline rows, then the online ones; rows are drawn uniformly with
        replacement from each source.

        Raises:
          EmptyTransitionsError: a source the ratio draws from is empty.
        """
        if num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        k = offline_rows(self.offline_ratio, batch_size)
        if k == batch_size:
            return self._draw(self.offline, self.offline_name, rng, k * num_batches)
        if k == 0:
            return self._draw(self.online, self.online_name, rng, batch_size * num_batches)
        offline = self._draw(self.offline, self.offline_name, rng, k * num_batches)
        online = self._draw(self.online, self.online_name, rng, (batch_size - k) * num_batches)
        return interleave_blocks(offline, online, num_batches)
