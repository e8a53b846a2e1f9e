"""The D4RL datasets the RLIF paper uses: download URLs and the offline env to pair them with.

URLs follow the d4rl package's ``d4rl/infos.py`` (Farama-Foundation/D4RL):
  * Gym-MuJoCo v2: ``.../offline_rl/gym_mujoco_v2/{env}_{dataset with '_'}-v2.hdf5``,
    e.g. ``hopper_medium_replay-v2.hdf5``;
  * Adroit v1: ``.../offline_rl/hand_dapg_v1/{env}-{dataset}-v1.hdf5``.
Nothing here downloads anything; the table is for users who are online.

``gymnasium_env_id`` is the maintained Gymnasium env to evaluate/record with
offline. Observation layouts match D4RL's for Hopper, Walker2d and
HalfCheetah (v5) and for Adroit (gymnasium-robotics ``AdroitHand*-v1``), but
NOT for Ant: D4RL's ant observations are 111-dim (27 + 84 contact forces,
all zeros under MuJoCo >= 2.0), Gymnasium's Ant-v5 gives 105 by default.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Optional

from rlif_data import errors

_BASE_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl"

LOCOMOTION = "locomotion"
ADROIT = "adroit"


class UnknownD4RLDatasetError(errors.RlifDataError, ValueError):
    """A D4RL dataset name is not in the catalog."""


@dataclasses.dataclass(frozen=True)
class D4RLDataset:
    """One D4RL dataset.

    Attributes:
      name: the D4RL name, e.g. "hopper-medium-v2".
      url: where the d4rl package downloads the HDF5 file from.
      family: "locomotion" (Gym-MuJoCo) or "adroit".
      gymnasium_env_id: the Gymnasium env to use with it offline.
      obs_dim: observation size stored in the file.
      action_dim: action size stored in the file.
      max_episode_steps: the time limit D4RL registers for its env (used to
        split files without a ``timeouts`` key).
      approx_rows: approximate number of rows (transitions), None if unknown.
      notes: caveats for users, "" if none.
      bytes: the file's published size, None if unknown (`d4rl_checksums`).
      sha256: the file's published SHA-256 (hex), None if unknown.
    """

    name: str
    url: str
    family: str
    gymnasium_env_id: str
    obs_dim: int
    action_dim: int
    max_episode_steps: int
    approx_rows: Optional[int] = None
    notes: str = ""
    bytes: Optional[int] = None
    sha256: Optional[str] = None


# (D4RL env, Gymnasium id, obs_dim, action_dim)
_LOCOMOTION_ENVS = (
    ("hopper", "Hopper-v5", 11, 3),
    ("walker2d", "Walker2d-v5", 17, 6),
    ("halfcheetah", "HalfCheetah-v5", 17, 6),
    ("ant", "Ant-v5", 111, 8),
)
# Approximate row counts of the single-policy datasets (1M each; medium-expert
# concatenates both). medium-replay sizes vary per env: left unknown.
_LOCOMOTION_KINDS = {
    "medium": 1_000_000,
    "medium-replay": None,
    "medium-expert": 2_000_000,
    "expert": 1_000_000,
}
_ANT_NOTE = (
    "D4RL ant observations are 111-dim (contact forces included); Gymnasium Ant-v5 "
    "returns 105 by default, so observations need adapting before mixing with live data"
)

# (D4RL env, Gymnasium-Robotics id, obs_dim, action_dim, D4RL max_episode_steps)
_ADROIT_ENVS = (
    ("pen", "AdroitHandPen-v1", 45, 24, 100),
    ("door", "AdroitHandDoor-v1", 39, 28, 200),
    ("hammer", "AdroitHandHammer-v1", 46, 26, 200),
    ("relocate", "AdroitHandRelocate-v1", 39, 30, 200),
)
_ADROIT_KINDS = ("human", "cloned", "expert")
_ADROIT_NOTE = "needs gymnasium-robotics for the env"


def _build() -> dict[str, D4RLDataset]:
    table: dict[str, D4RLDataset] = {}
    for env, gym_id, obs_dim, act_dim in _LOCOMOTION_ENVS:
        for kind, rows in _LOCOMOTION_KINDS.items():
            name = f"{env}-{kind}-v2"
            file_stem = f"{env}_{kind.replace('-', '_')}-v2"
            table[name] = D4RLDataset(
                name=name,
                url=f"{_BASE_URL}/gym_mujoco_v2/{file_stem}.hdf5",
                family=LOCOMOTION,
                gymnasium_env_id=gym_id,
                obs_dim=obs_dim,
                action_dim=act_dim,
                max_episode_steps=1000,
                approx_rows=rows,
                notes=_ANT_NOTE if env == "ant" else "",
            )
    for env, gym_id, obs_dim, act_dim, max_steps in _ADROIT_ENVS:
        for kind in _ADROIT_KINDS:
            name = f"{env}-{kind}-v1"
            table[name] = D4RLDataset(
                name=name,
                url=f"{_BASE_URL}/hand_dapg_v1/{name}.hdf5",
                family=ADROIT,
                gymnasium_env_id=gym_id,
                obs_dim=obs_dim,
                action_dim=act_dim,
                max_episode_steps=max_steps,
                notes=_ADROIT_NOTE,
            )
    return table


def _with_checksums(table: dict[str, D4RLDataset]) -> dict[str, D4RLDataset]:
    """Attach the published size and SHA-256 of each file that has them."""
    from rlif_data.sources.d4rl_checksums import D4RL_FILE_CHECKSUMS

    out = {}
    for name, row in table.items():
        known = D4RL_FILE_CHECKSUMS.get(row.url.rsplit("/", 1)[-1])
        out[name] = row if known is None else dataclasses.replace(
            row, bytes=known[0], sha256=known[1])
    return out


D4RL_DATASETS: dict[str, D4RLDataset] = _with_checksums(_build())
"""Every catalogued dataset, by D4RL name."""


def d4rl_dataset_names() -> list[str]:
    """The catalogued dataset names, sorted."""
    return sorted(D4RL_DATASETS)


def d4rl_dataset(name: str) -> D4RLDataset:
    """Look up a D4RL dataset by name.

    The lookup ignores case, surrounding spaces and '_' vs '-', so
    "Hopper_Medium-v2" finds "hopper-medium-v2".

    Args:
      name: a D4RL dataset name, e.g. "hopper-medium-v2" or "pen-human-v1".

    Returns:
      The catalog row.

    Raises:
      UnknownD4RLDatasetError: the name is not catalogued; the message lists
        the closest names (or all of them if none is close).
    """
    key = name.strip().lower().replace("_", "-")
    if key in D4RL_DATASETS:
        return D4RL_DATASETS[key]
    close = difflib.get_close_matches(key, D4RL_DATASETS, n=5, cutoff=0.6)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    else:
        hint = f"known datasets: {', '.join(d4rl_dataset_names())}"
    raise UnknownD4RLDatasetError(f"unknown D4RL dataset {name!r}; {hint}")
