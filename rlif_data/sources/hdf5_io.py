"""What the HDF5-based readers (D4RL, Minari, demo files) share: opening files, reading arrays.

The value checks they share (flags, NaN/inf, row counts) are in
`rlif_data.sources.arrays`.
"""

from __future__ import annotations

import os
from typing import Any, Type

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


def read_array(dataset: Any, key: str, where: str, error: Type[Exception],
               rows: Any = ()) -> np.ndarray:
    """``dataset[rows]`` as a NumPy array (all of it by default).

    Args:
      dataset: an h5py dataset.
      key: its name, for messages.
      where: the file (and episode), for messages.
      error: the reader's error class.
      rows: an index or slice of the first axis; ``()`` reads everything
        (scalars included).

    Raises:
      `error`: h5py cannot read the data (a damaged file).
    """
    try:
        return np.asarray(dataset[rows])
    except (OSError, RuntimeError) as e:
        raise error(f"{where}: cannot read '{key}' (corrupt file?): {e}") from e
