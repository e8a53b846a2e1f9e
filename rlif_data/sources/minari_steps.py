"""Minari episodes as RLDS steps, and the spaces this project can hold (pure).

Unlike D4RL, Minari stores the T+1 observations of an episode (the final one
included), so no row is ever dropped or invented: the episode maps one to one
onto RLDS steps (see `rlif_data.schema`):

  * ``terminated`` is ``terminations[-1]``; the transition into it gets
    discount 0.0 and the final step ``is_terminal``. A last row with both
    flags set counts as a termination (as in D4RL). A last row with neither
    flag (a recording that stopped) is treated as a truncation: discount 1.0,
    learners bootstrap through it.
  * flags follow the one rule of `rlif_data.sources.arrays` (bool or 0/1);
    a termination or truncation flag on any earlier row is an error: Minari
    ends an episode at the first one, so such a file is damaged.
  * every action counts as the expert's (``has_expert_action`` True,
    ``expert_action == action``), ``source`` is ``Source.DATASET``, and there
    are no interventions, as for the D4RL reader.

Supported spaces: Box observations of any rank (float data is stored as
float32) and Dict observations of Boxes (one level, like
`schema.EpisodeSchema`); Box actions of shape (act_dim,). Image Boxes
(`image_keys`; Minari stores their frames as encoded byte strings) are
decoded to uint8 frames (`rlif_data.convert.minari_frames`): bit-exact for
rlif-data's PNG export, Minari's own pixels for its JPEGs; (H, W, 3) ones
become camera entries. Tuple/Text/Discrete spaces and the Arrow backend are
rejected with a `MinariFormatError`.

Everything here works on NumPy arrays and dicts with no I/O;
`rlif_data.sources.minari_reader` is the h5py layer on top.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import numpy as np

from rlif_data import episodes, errors, schema
from rlif_data import intervention as iv
from rlif_data.sources import arrays

# HDF5 keys of a Minari episode group (not rlif schema fields).
OBSERVATIONS_KEY = "observations"
ACTIONS_KEY = "actions"
REWARDS_KEY = "rewards"
TERMINATIONS_KEY = "terminations"
TRUNCATIONS_KEY = "truncations"
REQUIRED_KEYS = (OBSERVATIONS_KEY, ACTIONS_KEY, REWARDS_KEY, TERMINATIONS_KEY, TRUNCATIONS_KEY)

# Keys of Minari's metadata.json read here.
META_ENV_SPEC = "env_spec"
META_OBSERVATION_SPACE = "observation_space"
META_ACTION_SPACE = "action_space"

# Episode metadata of imported Minari data.
OPERATOR = "minari"
INTERVENTION_MODEL = iv.MODEL_NONE


class MinariFormatError(errors.SchemaError):
    """A Minari dataset is unreadable or does not follow the Minari HDF5 layout."""


def _space(metadata: Mapping[str, Any], key: str, where: str) -> Optional[dict]:
    """The serialized space ``metadata[key]`` as a dict (Minari stores a JSON string)."""
    raw = metadata.get(key)
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise MinariFormatError(f"{where}: '{key}' is not valid JSON: {e}") from e
    if not isinstance(raw, Mapping) or "type" not in raw:
        raise MinariFormatError(f"{where}: '{key}' is not a serialized Gymnasium space: {raw!r}")
    return dict(raw)


def _is_image_box(space: Mapping[str, Any]) -> bool:
    """Minari's own test (`is_image_space`): such Boxes' frames are stored as encoded bytes.

    JPEG by Minari's writer, PNG by rlif-data's export (`convert/minari_frames.py`).
    """
    shape = list(space.get("shape", []))
    low, high = np.asarray(space.get("low", 0)), np.asarray(space.get("high", 0))
    return (
        space.get("dtype") == "uint8"
        and len(shape) in (2, 3)
        and shape[0] >= 32
        and shape[1] >= 32
        and bool(np.all(low == 0))
        and bool(np.all(high == 255))
    )


def _check_box(space: Mapping[str, Any], what: str, where: str, image_ok: bool = False) -> None:
    if space["type"] != "Box":
        raise MinariFormatError(
            f"{where}: {what} is a {space['type']} space; only Box spaces are supported"
        )
    if _is_image_box(space) and not image_ok:
        raise MinariFormatError(
            f"{where}: {what} is an image Box {space.get('shape')}; only observations may be "
            "images"
        )


def image_keys(metadata: Mapping[str, Any], where: str) -> frozenset[str]:
    """The observation keys ("observations" or "observations/<name>") of image Boxes.

    Minari stores their frames as encoded byte strings (JPEG, or PNG in
    rlif-data's export), one per row; the reader decodes them.

    Args:
      metadata: the parsed ``metadata.json``.
      where: the metadata file, for messages.
    """
    obs = _space(metadata, META_OBSERVATION_SPACE, where)
    if obs is None:
        return frozenset()
    if obs["type"] == "Dict":
        return frozenset(f"{OBSERVATIONS_KEY}/{name}"
                         for name, sub in dict(obs.get("subspaces", {})).items()
                         if _is_image_box(sub))
    return frozenset([OBSERVATIONS_KEY]) if _is_image_box(obs) else frozenset()


def check_spaces(metadata: Mapping[str, Any], where: str) -> None:
    """Reject observation/action spaces this reader cannot map onto the schema.

    Args:
      metadata: the parsed ``metadata.json``; spaces absent from it are not
        checked (the HDF5 structure checks still apply).
      where: the metadata file, for messages.

    Raises:
      MinariFormatError: observations that are neither a Box nor a Dict of
        Boxes, image actions, or actions that are not a Box of rank 1.
    """
    obs = _space(metadata, META_OBSERVATION_SPACE, where)
    if obs is not None:
        if obs["type"] == "Dict":
            for name, sub in dict(obs.get("subspaces", {})).items():
                _check_box(sub, f"observation entry {name!r}", where, image_ok=True)
        else:
            _check_box(obs, "the observation space", where, image_ok=True)
    act = _space(metadata, META_ACTION_SPACE, where)
    if act is not None:
        _check_box(act, "the action space", where)
        if len(act.get("shape", [])) != 1:
            raise MinariFormatError(
                f"{where}: the action space has shape {act.get('shape')}; "
                "only vector actions (act_dim,) are supported"
            )


def env_id_from_metadata(metadata: Mapping[str, Any]) -> str:
    """The Gymnasium env id recorded in a Minari ``metadata.json``.

    Args:
      metadata: the parsed ``metadata.json``.

    Returns:
      The ``env_spec`` id (e.g. "Hopper-v5"), or "" when the dataset was made
      without an environment.

    Raises:
      MinariFormatError: ``env_spec`` is present but not a valid spec.
    """
    spec = metadata.get(META_ENV_SPEC)
    if spec is None:
        return ""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise MinariFormatError(f"'{META_ENV_SPEC}' in metadata is not valid JSON: {e}") from e
    if spec is None:
        return ""
    if not isinstance(spec, Mapping):
        raise MinariFormatError(f"'{META_ENV_SPEC}' in metadata is not an env spec: {spec!r}")
    return str(spec.get("id") or "")


def _observation_leaf(values: Any, key: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise MinariFormatError(f"{where}: '{key}' must be numeric, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise MinariFormatError(
            f"{where}: '{key}' must have shape [T+1, ...], got {arr.shape}"
        )
    # Checked (by the caller) after the cast: float64 beyond float32 overflows to inf.
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr


def episode_steps(
    observations: Any,
    actions: Any,
    rewards: Any,
    terminations: Any,
    truncations: Any,
    *,
    where: str = "episode",
) -> dict[str, Any]:
    """Lay out one Minari episode as RLDS steps.

    Args:
      observations: [T+1, ...] array, or a dict of such arrays (Dict space).
      actions: [T, act_dim] actions.
      rewards: [T] rewards.
      terminations, truncations: [T] flags; only the last row may be set.
      where: context for messages, e.g. "data/main_data.hdf5, episode_3".

    Returns:
      ``{field: array stacked over the T+1 steps}`` with every core and
      intervention step field of `rlif_data.schema` (built by
      `episodes.build_steps`).

    Raises:
      MinariFormatError: lengths that disagree (observations != actions + 1),
        wrong ranks or dtypes, an episode with no action, a termination or
        truncation before the last row, or NaN/inf in observations, actions or
        rewards (naming key and row).
    """
    if isinstance(observations, Mapping):
        if not observations:
            raise MinariFormatError(f"{where}: '{OBSERVATIONS_KEY}' is an empty group")
        obs: Any = {
            name: _observation_leaf(v, f"{OBSERVATIONS_KEY}/{name}", where)
            for name, v in observations.items()
        }
        obs_rows = {f"{OBSERVATIONS_KEY}/{name}": len(v) for name, v in obs.items()}
    else:
        obs = _observation_leaf(observations, OBSERVATIONS_KEY, where)
        obs_rows = {OBSERVATIONS_KEY: len(obs)}

    act = arrays.numeric(actions, ACTIONS_KEY, where, MinariFormatError, ndim=2,
                         shape="[T, act_dim]").astype(np.float32)
    rew = arrays.numeric(rewards, REWARDS_KEY, where, MinariFormatError, ndim=1,
                         shape="[T]").astype(np.float32)
    term = arrays.flag_column(terminations, TERMINATIONS_KEY, where, MinariFormatError)
    trunc = arrays.flag_column(truncations, TRUNCATIONS_KEY, where, MinariFormatError)

    t = len(act)
    if t == 0:
        raise MinariFormatError(f"{where}: the episode has no actions (T = 0)")
    check_episode_rows({ACTIONS_KEY: t, **obs_rows, REWARDS_KEY: len(rew),
                        TERMINATIONS_KEY: len(term), TRUNCATIONS_KEY: len(trunc)}, where)
    # Values last: the error for a wrong layout is clearer than a NaN row number in it.
    leaves = obs.items() if isinstance(obs, dict) else [("", obs)]
    for name, leaf in leaves:
        arrays.check_finite(leaf, f"{OBSERVATIONS_KEY}/{name}" if name else OBSERVATIONS_KEY,
                            where, MinariFormatError)
    arrays.check_finite(act, ACTIONS_KEY, where, MinariFormatError)
    arrays.check_finite(rew, REWARDS_KEY, where, MinariFormatError)
    early = np.flatnonzero((term | trunc)[:-1])
    if len(early):
        raise MinariFormatError(
            f"{where}: termination/truncation flag set at row {int(early[0])} before the "
            f"last row {t - 1}; an episode must end at its first termination or truncation"
        )

    terminated = bool(term[-1])
    return episodes.build_steps(
        obs,
        act,
        rew,
        arrays.end_discounts(t, terminated),
        terminated=terminated,
        expert_actions=act,
        # Dataset actions count as expert actions: DAgger/BC read them as labels.
        has_expert_action=np.ones(t, np.bool_),
        source=schema.Source.DATASET,
    )


def episode_metadata(dataset_id: str, index: int, env_id: str, seed: int = 0) -> dict[str, Any]:
    """Episode metadata of an imported Minari episode.

    Args:
      dataset_id: the Minari dataset id, e.g. "mujoco/hopper/expert-v0".
      index: the Minari episode id.
      env_id: the environment the data belongs to ("" if unknown).
      seed: the reset seed Minari recorded for the episode (0 if none).

    Returns:
      A value for every field of `schema.EPISODE_METADATA_FIELDS`.
    """
    return episodes.complete_metadata(
        {
            schema.EPISODE_ID: f"{dataset_id}/{index}",
            schema.SESSION_ID: dataset_id,
            schema.OPERATOR: OPERATOR,
            schema.INTERVENTION_MODEL: INTERVENTION_MODEL,
            schema.ENV_ID: env_id,
            schema.SEED: int(seed),
        },
        f"{dataset_id}/{index}",
    )


def space_shapes(metadata: Mapping[str, Any], where: str) -> dict[str, tuple]:
    """The row shapes the metadata's spaces promise, by key ("observations[/name]", "actions").

    Spaces absent from the metadata are left out (the first episode then sets them).
    """
    out: dict[str, tuple] = {}
    obs = _space(metadata, META_OBSERVATION_SPACE, where)
    if obs is not None:
        if obs["type"] == "Dict":
            for name, sub in dict(obs.get("subspaces", {})).items():
                out[f"{OBSERVATIONS_KEY}/{name}"] = tuple(sub.get("shape", ()))
        else:
            out[OBSERVATIONS_KEY] = tuple(obs.get("shape", ()))
    act = _space(metadata, META_ACTION_SPACE, where)
    if act is not None:
        out[ACTIONS_KEY] = tuple(act.get("shape", ()))
    return out


def check_episode_shapes(shapes: Mapping[str, tuple], expected: Mapping[str, tuple], where: str,
                         against: str) -> None:
    """Every episode's observation entries and actions have the dataset's per-row shapes.

    Args:
      shapes: this episode's ``{key: shape of one row}`` (observation entries, actions).
      expected: the same for the dataset (from its spaces, else its first episode).
      where: file and episode, for messages.
      against: where `expected` comes from, for messages ("the metadata's spaces").

    Raises:
      MinariFormatError: other observation entries, or a row shape that differs.
    """
    obs_keys = sorted(k for k in shapes if k.split("/")[0] == OBSERVATIONS_KEY)
    want_keys = sorted(k for k in expected if k.split("/")[0] == OBSERVATIONS_KEY)
    if want_keys and obs_keys != want_keys:
        raise MinariFormatError(f"{where}: observation entries {obs_keys} differ from "
                                f"{want_keys} of {against}")
    for key, shape in shapes.items():
        if key in expected and tuple(shape) != tuple(expected[key]):
            raise MinariFormatError(
                f"{where}: '{key}' rows have shape {tuple(shape)}, but {against} give "
                f"{tuple(expected[key])}; every episode of a dataset has the same shapes")


def check_episode_rows(rows: dict[str, int], where: str) -> None:
    """Observations (every leaf) one row more than actions; rewards and flags as many."""
    arrays.check_rows(rows, ACTIONS_KEY, where, MinariFormatError,
                      one_more=[k for k in rows if k.split("/")[0] == OBSERVATIONS_KEY],
                      hint="Minari stores T+1 observations and T actions, rewards and flags")
