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
* the extra step fields (`schema.INFOS`, e.g. D4RL's qpos) as the nested
  infos ``infos/infos/<name>``, T+1 rows in their own dtype (the final row
  zeros, as stored);
* the dataset's `schema.FORMAT_VERSION_KEY` in ``metadata.json``, which tells
  the reader that these fields are ours (other datasets' infos are ignored).

Camera entries become ``Box(0, 255, (H, W, 3), uint8)`` entries of a Dict
observation space, their frames PNG-encoded in Minari's image layout, so
they round-trip bit-exact (`rlif_data.convert.minari_frames` says why not
Minari's own lossy JPEG).
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
    """A dataset cannot be written as a Minari dataset (odd camera frames, bad dataset id)."""


def check_exportable(schema: sc.EpisodeSchema) -> None:
    """Refuse schemas Minari cannot hold losslessly.

    Raises:
      MinariExportError: camera entries that are not RGB (3 channels): Minari
        decodes a 1-channel frame to (H, W), not the space's (H, W, 1).
    """
    obs = schema.observation
    leaves = obs.items() if isinstance(obs, Mapping) else [("", obs)]
    odd = [k for k, v in leaves if isinstance(v, sc.ImageSpec) and v.channels != 3]
    if odd:
        raise MinariExportError(
            f"camera entries {odd} are not RGB (3 channels); the Minari export holds RGB "
            "frames only: export such datasets with --to lerobot (frames stay bit-exact)")


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


def extra_step_infos(steps: Mapping[str, Any], schema: sc.EpisodeSchema) -> dict[str, np.ndarray]:
    """The extra step fields (`schema.INFOS`) of an episode, T+1 rows each in the schema's dtype."""
    values = steps.get(sc.INFOS) or {}
    return {name: np.asarray(values[name]).astype(spec.dtype, copy=False)
            for name, spec in schema.infos.items()}


def info_specs(steps: Mapping[str, Any]) -> dict[str, sc.ArraySpec]:
    """The `schema.EpisodeSchema.infos` of episodes read back with these steps (empty if none)."""
    return {name: sc.ArraySpec(tuple(np.shape(v)[1:]), np.asarray(v).dtype.name)
            for name, v in (steps.get(sc.INFOS) or {}).items()}


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
        `INFO_FIELDS` entry (a relabelled view: also env_reward and include),
        and may hold the extra step fields as a dict under `schema.INFOS`.
      where: file and episode, for messages.
      error: the reader's error class.

    Returns:
      `steps`, updated in place.

    Raises:
      `error`: a field missing, of another row count than T+1 or another
        shape, flags that are not 0/1, NaN/inf in float fields, or extra
        step fields of another row count or a dtype rlif-data does not store.
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
    extras = infos.get(sc.INFOS)
    if extras is not None:
        steps[sc.INFOS] = _extra_fields(extras, n, where, error)
    return steps


def _extra_fields(extras: Any, n: int, where: str, error: type) -> dict[str, np.ndarray]:
    """The stored extra step fields (``infos/infos/<name>``), checked: T+1 rows, a kept dtype."""
    if not isinstance(extras, Mapping):
        raise error(f"{where}: 'infos/{sc.INFOS}' must be a group of per-step arrays")
    out = {}
    for name, raw in sorted(extras.items()):
        key = f"infos/{sc.INFOS}/{name}"
        values = np.asarray(raw)
        if values.ndim < 1 or len(values) != n:
            raise error(f"{where}: '{key}' has shape {values.shape}, the episode has {n} steps "
                        "(T+1 rows: one per observation)")
        try:
            sc.check_info_spec(name, sc.ArraySpec(values.shape[1:], values.dtype.name))
        except ValueError as e:
            raise error(f"{where}: '{key}': {e}") from None
        out[name] = values
    return out


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
