"""The IDX file format of MNIST and Fashion-MNIST, read with numpy (plain or gzip-compressed).

Layout: two zero bytes, a type code, the number of dimensions, each dimension as a big-endian
uint32, then the values in C order (big-endian when wider than a byte).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed), in native byte order and writable.

    Raises:
        DataError: the file cannot be read, is not IDX, or holds a different amount of data than its
            header announces (a truncated download, say).
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _TYPES:
        raise DataError(f"{path} is not an IDX file (its first bytes are {raw[:4].hex()})")
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataError(f"{path} is cut short inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(_TYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - start != expected:
        shape = "x".join(map(str, dims))
        raise DataError(
            f"{path} holds {len(raw) - start:,} bytes of data but its header announces {shape} = {expected:,}"
        )
    return np.frombuffer(raw, dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))
