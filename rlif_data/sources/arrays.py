"""One rule for the arrays every source reader checks: done-flags, NaN/inf, row counts.

The D4RL, Minari and demo-file readers each read columns of a foreign
layout and must refuse the same kinds of bad data the same way:

* **flags** (terminals, timeouts, terminations, truncations, interventions,
  terminated) are bool, or numbers that are exactly 0 or 1 (int columns,
  and the 0.0/1.0 floats old D4RL files hold). Anything else (2, -1, 0.5,
  NaN, text) is an error naming the key and the first bad row: guessing
  that a 2 means "done" would silently split or end episodes in the wrong
  place;
* **values** that learners read must be finite: the first row holding
  NaN/inf is named;
* **row counts**: every column has as many rows as a reference column
  (observations one more where the final observation is stored);
* **dtypes and ranks**: numeric columns of the rank the layout says;
* **discounts**: 1.0, and 0.0 on the transition into a true termination.

Each function takes the reader's own error class, so a D4RL file still
raises `D4RLFormatError` and a demo file `DemoFormatError`. Messages read
``"<where>: '<key>' <what is wrong>"``. Pure: NumPy in, no I/O.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping, Optional, Type

import numpy as np

FLAG_RULE = "bool (or 0/1)"


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _bad_flag_rows(arr: np.ndarray) -> np.ndarray:
    """Indices of the entries of 1-D `arr` that are not 0/1/False/True."""
    if arr.dtype.kind == "b":
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iuf":
        return np.arange(len(arr))  # text, objects: no row is a flag
    ok = (arr == 0) | (arr == 1)  # NaN compares unequal to both: refused
    return np.flatnonzero(~ok)


def flag_column(values: Any, key: str, where: str, error: Type[Exception], *,
                column_ok: bool = False) -> np.ndarray:
    """A column of per-row flags as a 1-D bool array, by the one flag rule.

    Args:
      values: the column, shape [rows] (or [rows, 1] with `column_ok`).
      key: its name in the source layout, for messages.
      where: the file (and episode) it came from, for messages ("" for none).
      error: the reader's error class.
      column_ok: also accept shape [rows, 1] (D4RL stores some flags so).

    Returns:
      The flags, dtype bool, shape [rows].

    Raises:
      `error`: a wrong shape, or a value other than bool/0/1 (naming the
        first such row and its value).
    """
    arr = np.asarray(values)
    if column_ok and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        want = "[rows] or [rows, 1]" if column_ok else "[rows]"
        raise error(f"{_prefix(where)}'{key}' must have shape {want}, got {arr.shape}")
    bad = _bad_flag_rows(arr)
    if len(bad):
        row = int(bad[0])
        raise error(f"{_prefix(where)}'{key}' must be {FLAG_RULE}, got {arr[row]!r} "
                    f"(dtype {arr.dtype}) at row {row}")
    return arr.astype(bool)


def flag_value(value: Any, key: str, where: str, error: Type[Exception]) -> bool:
    """One flag (e.g. an episode's ``terminated``), by the one flag rule.

    Raises:
      `error`: not a scalar, or a value other than bool/0/1.
    """
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise error(f"{_prefix(where)}'{key}' must be a scalar bool (one per episode), "
                    f"got shape {arr.shape}")
    if len(_bad_flag_rows(arr.reshape(1))):
        raise error(f"{_prefix(where)}'{key}' must be a {FLAG_RULE}, got {arr!r}")
    return bool(arr)


def numeric(values: Any, key: str, where: str, error: Type[Exception], *, ndim: int,
            shape: str) -> np.ndarray:
    """``values`` as an array, checked to be numeric (bool, int, float) of rank `ndim`.

    Args:
      values: the column.
      key: its name in the source layout.
      where: the file (and episode), for messages.
      error: the reader's error class.
      ndim: the rank it must have.
      shape: how the message spells that shape, e.g. "[T, act_dim]".

    Raises:
      `error`: another dtype (text, objects) or rank.
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise error(f"{_prefix(where)}'{key}' must be numeric, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise error(f"{_prefix(where)}'{key}' must be {ndim}-D {shape}, got shape {arr.shape}")
    return arr


def first_non_finite_row(values: np.ndarray) -> Optional[int]:
    """Index of the first row holding NaN/inf, or None if all are finite.

    Args:
      values: an array whose first axis is the row.

    Returns:
      The row index, or None.
    """
    arr = np.asarray(values)
    bad = ~np.isfinite(arr)
    if bad.ndim > 1:
        bad = bad.reshape(len(arr), int(np.prod(arr.shape[1:]))).any(axis=1)
    rows = np.flatnonzero(bad)
    return int(rows[0]) if len(rows) else None


def check_finite(values: np.ndarray, key: str, where: str, error: Type[Exception], *,
                 first_row: int = 0, context: str = "") -> np.ndarray:
    """``values`` unchanged, or `error` naming the first row holding NaN/inf.

    Check after casting to the stored dtype: float64 values beyond float32
    become inf in the cast.

    Args:
      values: the rows (integer and bool arrays are always finite).
      key: its name in the source layout.
      where: the file (and episode), for messages.
      error: the reader's error class.
      first_row: the file row of ``values[0]`` (a slice of a longer column).
      context: appended in parentheses, e.g. "episode 1, rows 4..6".
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "fc" and arr.size:
        bad = first_non_finite_row(arr)
        if bad is not None:
            extra = f" ({context})" if context else ""
            raise error(f"{_prefix(where)}'{key}' has a non-finite value (NaN/inf) at row "
                        f"{first_row + bad}{extra}")
    return values


def check_rows(rows: Mapping[str, int], reference: str, where: str, error: Type[Exception], *,
               one_more: Collection[str] = (), hint: str = "") -> None:
    """Every column has as many rows as `reference` (one more for those in `one_more`).

    Args:
      rows: row count by key, `reference` included.
      reference: the key the others are measured against (e.g. actions).
      where: the file (and episode), for messages.
      error: the reader's error class.
      one_more: keys that hold one row more (observations with the final one).
      hint: appended to the message: what the layout expects.

    Raises:
      `error`: the first column (in `rows` order) with another count.
    """
    want = rows[reference]
    for key, n in rows.items():
        if n != want + (1 if key in one_more else 0):
            raise error(f"{_prefix(where)}'{key}' has {n} rows but '{reference}' has {want}"
                        + (f"; {hint}" if hint else ""))


def end_discounts(num_transitions: int, terminated: bool) -> np.ndarray:
    """Per-transition discounts of an episode read from a source: 1.0, and 0.0 into a termination.

    A truncated (time-limited, cut) episode keeps 1.0 on its last transition,
    so learners bootstrap through it; a true termination gets 0.0 there.
    """
    discounts = np.ones(num_transitions, np.float32)
    if terminated and num_transitions:
        discounts[-1] = 0.0
    return discounts


def per_transition(values: Any, num_transitions: int) -> np.ndarray:
    """A per-transition column laid out over the T+1 RLDS steps: its first T rows, then zeros.

    The final step holds no transition, so (as for actions and rewards) its
    row is zero-filled. Rows past T (the source's last row of a truncated
    episode whose outcome is unknown) are dropped.

    Args:
      values: the source rows, at least `num_transitions` of them; kept in
        their dtype.
      num_transitions: T.

    Returns:
      An array of T+1 rows, same dtype and row shape as `values`.

    Raises:
      ValueError: fewer than T rows.
    """
    arr = np.asarray(values)
    if arr.ndim < 1 or len(arr) < num_transitions:
        raise ValueError(f"{len(arr) if arr.ndim else 0} rows for {num_transitions} transitions")
    out = np.zeros((num_transitions + 1,) + arr.shape[1:], arr.dtype)
    out[:num_transitions] = arr[:num_transitions]
    return out
