"""What the HDF5-based readers (D4RL, Minari, demo files) share: opening files, NaN checks."""

from __future__ import annotations

import os
from typing import Any, Optional, Type

import numpy as np


def open_hdf5(path: Any, error: Type[Exception]):
    """Open an HDF5 file read-only (usable as a context manager).

    Raises:
      `error`: not HDF5, truncated or corrupt (h5py raises a bare OSError for all three).
    """
    import h5py  # imported here: only the readers need it

    try:
        return h5py.File(os.fspath(path), "r")
    except OSError as e:
        raise error(
            f"{path}: not a readable HDF5 file (not HDF5, truncated or corrupt): {e}"
        ) from e


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


def check_finite(values: np.ndarray, key: str, where: str, error: Type[Exception]) -> np.ndarray:
    """``values`` unchanged, or `error` naming the first row holding NaN/inf."""
    if values.dtype.kind == "f" and len(values):
        bad = first_non_finite_row(values)
        if bad is not None:
            raise error(f"{where}: '{key}' has a non-finite value (NaN/inf) at row {bad}")
    return values
