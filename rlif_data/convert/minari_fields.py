"""rlif-data episodes as Minari episodes, and the fields Minari has no place for (pure, no I/O).

Minari stores, per episode, T+1 observations and T actions, rewards,
terminations and truncations, like an RLDS episode without its flags. What
it lacks, rlif-data keeps where Minari keeps extras:

* **step fields** (`schema.INTERVENTION_STEP_FIELDS`, the discount, and a
  relabelled view's `env_reward`/`include`) as per-step ``infos`` with T+1
  rows, row t being RLDS step t: the fields of the action taken from
  ``observations[t]``; the last row is the final step's (zeros), as Minari's
  infos also hold T+1 rows (the reset's and one per step);
* **episode metadata** (`schema.EPISODE_METADATA_FIELDS`) as attributes
  ``rlif/<field>`` of the episode's HDF5 group (Minari's episode metadata,
  which ``get_episode_metadata`` returns as ``{"rlif": {...}}``); the seed also
  as Minari's own ``seed``;
* the dataset's `schema.FORMAT_VERSION_KEY` in ``metadata.json``, which tells
  the reader that these fields are ours (other datasets' infos are ignored).

Camera frames are refused: Minari's HDF5 storage JPEG-encodes uint8 images
(lossy), and the reader does not decode them.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rlif_data import errors, episodes
from rlif_data import schema as sc
from rlif_data.sources import arrays

EPISODE_ATTR_PREFIX = "rlif/"
INFO_FIELDS = (sc.DISCOUNT,) + sc.INTERVENTION_STEP_FIELDS
INFO_DTYPES = {
    sc.DISCOUNT: np.float32, sc.INTERVENTION: np.bool_, sc.INTERVENTION_START: np.bool_,
    sc.POLICY_ACTION: np.float32, sc.EXPERT_ACTION: np.float32, sc.HAS_EXPERT_ACTION: np.bool_,
    sc.SOURCE: np.int64, sc.TIMESTAMP_US: np.int64, sc.ENV_REWARD: np.float32,
    sc.INCLUDE: np.bool_,
}


class MinariExportError(errors.SchemaError):
    """A dataset cannot be written as a Minari dataset (camera frames, bad dataset id)."""


def check_exportable(schema: sc.EpisodeSchema) -> None:
    """Refuse schemas Minari cannot hold losslessly.

    Raises:
      MinariExportError: camera frames in the observations.
    """
    obs = schema.observation
    leaves = obs.items() if isinstance(obs, Mapping) else [("", obs)]
    cameras = [k for k, v in leaves if isinstance(v, sc.ImageSpec)]
    if cameras:
        raise MinariExportError(
            f"camera entries {cameras}: Minari's HDF5 storage JPEG-encodes camera frames "
            "(lossy) and rlif-data does not read them back; export camera datasets with "
            "--to lerobot (frames stay bit-exact)")


def info_fields(derived: bool) -> tuple[str, ...]:
    """The step fields stored as infos; a relabelled view's two more."""
    return INFO_FIELDS + (sc.DERIVED_STEP_FIELDS if derived else ())


def minari_columns(episode: Mapping[str, Any]) -> dict[str, Any]:
    """An episode's Minari arrays: T+1 observations; T actions, rewards, terminations, truncations.

    A terminated episode sets its last termination flag, any other its last
    truncation flag (time limit, cut, abandoned).
    """
    steps = episode[sc.STEPS]
    t = len(steps[sc.IS_FIRST]) - 1
    terminated = bool(np.asarray(steps[sc.IS_TERMINAL])[-1])
    terminations = np.zeros(t, np.bool_)
    truncations = np.zeros(t, np.bool_)
    if t:
        terminations[-1] = terminated
        truncations[-1] = not terminated
    obs = steps[sc.OBSERVATION]
    observations = ({k: np.asarray(v) for k, v in obs.items()} if isinstance(obs, Mapping)
                    else np.asarray(obs))
    return {"observations": observations,
            "actions": np.asarray(steps[sc.ACTION], np.float32)[:t],
            "rewards": np.asarray(steps[sc.REWARD], np.float32)[:t],
            "terminations": terminations, "truncations": truncations}


def step_infos(steps: Mapping[str, Any], derived: bool) -> dict[str, np.ndarray]:
    """The per-step infos of an episode: one array of T+1 rows per field of `info_fields`."""
    return {f: np.asarray(steps[f]).astype(INFO_DTYPES[f], copy=False)
            for f in info_fields(derived)}


def episode_attrs(episode: Mapping[str, Any]) -> dict[str, Any]:
    """The episode group's attributes: ``rlif/<field>`` for each metadata field."""
    meta = episodes.default_episode_metadata()
    meta.update({k: episode[k] for k in sc.EPISODE_METADATA_FIELDS if k in episode})
    out = {}
    for key in sc.EPISODE_METADATA_FIELDS:
        value = meta[key]
        out[EPISODE_ATTR_PREFIX + key] = (
            int(value) if key in (sc.ROUND, sc.SEED) else
            value.decode("utf-8") if isinstance(value, bytes) else str(value))
    return out


def apply_step_infos(steps: dict[str, Any], infos: Mapping[str, Any], where: str,
                     error: type = errors.SchemaError) -> dict[str, Any]:
    """Put the stored step fields back into steps built from Minari's arrays.

    Args:
      steps: from `minari_steps.episode_steps` (T+1 rows per field).
      infos: the episode's infos, ``{field: array}``; must hold every
        `INFO_FIELDS` entry (a relabelled view: also env_reward and include).
      where: file and episode, for messages.
      error: the reader's error class.

    Returns:
      `steps`, updated in place.

    Raises:
      `error`: a field missing, of another row count than T+1 or another
        shape, flags that are not 0/1, or NaN/inf in float fields.
    """
    n = len(steps[sc.IS_FIRST])
    derived = all(f in infos for f in sc.DERIVED_STEP_FIELDS)
    missing = [f for f in info_fields(False) if f not in infos]
    if missing:
        raise error(f"{where}: infos lack {missing}; a dataset exported by rlif-data stores "
                    f"{list(info_fields(False))} per step")
    for field in info_fields(derived):
        values = np.asarray(infos[field])
        key = f"infos/{field}"
        if len(values) != n:
            raise error(f"{where}: '{key}' has {len(values)} rows, the episode has {n} steps "
                        "(T+1 rows: one per observation)")
        dtype = INFO_DTYPES[field]
        if dtype is np.bool_:
            values = arrays.flag_column(values, key, where, error)
        else:
            vector = field in (sc.POLICY_ACTION, sc.EXPERT_ACTION)
            values = arrays.numeric(values, key, where, error, ndim=2 if vector else 1,
                                    shape="[T+1, act_dim]" if vector else "[T+1]").astype(dtype)
            arrays.check_finite(values, key, where, error)
        if field in (sc.POLICY_ACTION, sc.EXPERT_ACTION) and values.shape != np.shape(
                steps[sc.ACTION]):
            raise error(f"{where}: '{key}' has shape {values.shape}, actions "
                        f"{np.shape(steps[sc.ACTION])}")
        steps[field] = values
    return steps


def metadata_from_attrs(attrs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The episode metadata stored as ``rlif/<field>`` attributes (absent ones left out)."""
    out: dict[str, Any] = {}
    for key in sc.EPISODE_METADATA_FIELDS:
        value = attrs.get(EPISODE_ATTR_PREFIX + key)
        if value is None:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        out[key] = int(value) if key in (sc.ROUND, sc.SEED) else str(value)
    return episodes.complete_metadata(out, where) if out else {}
