"""Camera frames in a Minari dataset: PNG byte strings in Minari's own image layout (lossless).

What Minari 0.5.3 does with uint8 frames (read in the installed package):

* writing: ``minari/dataset/_storages/hdf5_storage.py``, `_add_episode_to_group`
  JPEG-encodes (`encode_frame`: PIL, default quality 75) every uint8 array of
  rank 2 or 3, or of rank 4 ending in 1 or 3 channels (`_is_image`), whatever
  the space says, and stores one variable-length uint8 row of JPEG bytes per
  frame: lossy (a uint8 ``Box`` round-trips with pixel errors);
* reading: ``HDF5Storage._decode_space`` (same file) decodes the entries of
  an image space (``minari/dataset/minari_storage.py``, `is_image_space`: a
  uint8 Box, low 0, high 255, shape (H, W[, C]) with H, W >= 32) by
  ``PIL.Image.open`` on each stored row, which reads PNG as well as JPEG.

So rlif-data writes camera entries itself (`write_frames`, h5py), as PNG byte
strings in the layout Minari's writer uses for its JPEGs: ``minari.load_dataset``
decodes them with its own code, bit-exact, and ``ingest-minari`` reads them
back (`decode_frames`, PNG or a foreign dataset's JPEG). A frame Minari does
not take for an image (under 32 px) is stored raw, as its reader then expects.
"""

from __future__ import annotations

import io
from typing import Any, Sequence, Type

import numpy as np

PNG_COMPRESS_LEVEL = 1  # fast; PNG is lossless at every level
# Formats accepted when decoding: PNG (ours), JPEG (Minari's own writer). Nothing
# else is handed to PIL, whose many other decoders need not see foreign files.
DECODE_FORMATS = ("PNG", "JPEG")
MIN_IMAGE_SIDE = 32  # Minari's `is_image_space`: smaller uint8 Boxes are not images


def is_image_shape(shape: Sequence[int]) -> bool:
    """Whether Minari takes a uint8 Box (low 0, high 255) of this shape for an image.

    Mirrors ``minari.dataset.minari_storage.is_image_space`` for the camera
    Boxes rlif-data writes, without importing minari.
    """
    shape = tuple(shape)
    return len(shape) in (2, 3) and shape[0] >= MIN_IMAGE_SIDE and shape[1] >= MIN_IMAGE_SIDE


def encode_png(frames: np.ndarray) -> list[np.ndarray]:
    """Each frame as a 1-D uint8 array of PNG bytes (Minari's row layout for image frames).

    Args:
      frames: [N, H, W, C] (C 1, 3 or 4) or [N, H, W] uint8.

    Raises:
      ValueError: not uint8.
    """
    from PIL import Image

    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        raise ValueError(f"camera frames must be uint8, got {arr.dtype}")
    out = []
    for frame in arr:
        image = frame[..., 0] if frame.ndim == 3 and frame.shape[-1] == 1 else frame
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG",
                                                          compress_level=PNG_COMPRESS_LEVEL)
        out.append(np.frombuffer(buf.getvalue(), np.uint8))
    return out


def decode_frames(rows: Any, shape: Sequence[int], key: str, where: str,
                  error: Type[Exception]) -> np.ndarray:
    """Encoded frames (one PNG or JPEG byte string per row) as a uint8 [N, *shape] array.

    Each image's size is read from its header and compared with `shape`
    before its pixels are decoded, so an oversized image is refused unread.

    Args:
      rows: what h5py returns for the entry: an object array of 1-D uint8
        arrays (variable length), or a 2-D uint8 array (all rows one length).
      shape: the frame shape the observation space gives, (H, W) or (H, W, C).
      key: the entry, e.g. "observations/front", for messages.
      where: the file and episode, for messages.
      error: the reader's error class.

    Raises:
      `error`: a row that is not PNG/JPEG, does not decode, or has another
        size or channel count than `shape` (naming key and row).
    """
    from PIL import Image, UnidentifiedImageError

    shape = tuple(int(d) for d in shape)
    rows = list(rows) if isinstance(rows, np.ndarray) and rows.dtype == object else rows
    out = np.empty((len(rows),) + shape, np.uint8)
    for i, row in enumerate(rows):
        data = np.asarray(row)
        if data.dtype != np.uint8 or data.ndim != 1:
            raise error(f"{where}: '{key}' row {i} is not an encoded image (dtype {data.dtype}, "
                        f"shape {data.shape}); Minari stores image frames as byte strings")
        try:
            with Image.open(io.BytesIO(data.tobytes()), formats=DECODE_FORMATS) as image:
                if (image.height, image.width) != shape[:2]:
                    raise error(f"{where}: '{key}' row {i} is a {image.height}x{image.width} "
                                f"image, the observation space gives {shape}")
                pixels = np.asarray(image)
        except (UnidentifiedImageError, OSError) as e:
            raise error(f"{where}: '{key}' row {i} does not decode as PNG or JPEG ({e})") from None
        if pixels.shape != shape:
            raise error(f"{where}: '{key}' row {i} decodes to shape {pixels.shape}, the "
                        f"observation space gives {shape}")
        out[i] = pixels
    return out


def write_frames(group: Any, key: str, frames: np.ndarray) -> None:
    """Store one camera entry of an episode in ``group`` (h5py) as Minari's reader expects it.

    Image-sized frames (`is_image_shape`) become PNG byte strings, one
    variable-length uint8 row each; smaller ones are stored raw.

    Args:
      group: the episode's ``observations`` h5py group.
      key: the entry's name.
      frames: [T+1, H, W, C] uint8.
    """
    import h5py

    arr = np.asarray(frames)
    if is_image_shape(arr.shape[1:]):
        data = np.empty(len(arr), object)
        data[:] = encode_png(arr)
        group.create_dataset(key, data=data, dtype=h5py.vlen_dtype(np.uint8), chunks=True)
    else:
        group.create_dataset(key, data=np.ascontiguousarray(arr, np.uint8), chunks=True)
