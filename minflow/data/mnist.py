"""A reader for MNIST in its original IDX files, from a folder you provide.

minflow never downloads anything: fetch the four files yourself, e.g. from
https://yann.lecun.com/exdb/mnist/ or its mirror
https://storage.googleapis.com/cvdf-datasets/mnist/ , and put them in one
folder, gzipped or not:

    train-images-idx3-ubyte(.gz)   train-labels-idx1-ubyte(.gz)
    t10k-images-idx3-ubyte(.gz)    t10k-labels-idx1-ubyte(.gz)

(The dotted names some mirrors use, ``train-images.idx3-ubyte``, are found
too.) Fashion-MNIST ships the same format and file names.

IDX format (LeCun et al.): a big-endian header, then the raw bytes.

    bytes 0-1   zero
    byte  2     element type: 0x08 = unsigned byte
    byte  3     number of dimensions d (3 for images, 1 for labels)
    4*d bytes   each dimension as a big-endian int32 (N, rows, cols / N)
    then        prod(dims) bytes, row-major

so the magic number (first 4 bytes as a big-endian int) is 2051 for
images and 2049 for labels.
"""

import gzip
import os
import zlib

import numpy

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "MNIST_FILES", "load_mnist", "read_idx"]

IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_WHERE = (
    "minflow does not download data: get the four MNIST files yourself, e.g. from "
    "https://yann.lecun.com/exdb/mnist/ or https://storage.googleapis.com/cvdf-datasets/mnist/ "
    "(gzipped or not, names unchanged), and put them in one folder."
)


def _candidates(name):
    """File names accepted for ``name``: plain or .gz, with '-' or '.' before 'idx'."""
    dotted = name.replace("-idx", ".idx")
    return [name, name + ".gz", dotted, dotted + ".gz"]


def _find(folder, name):
    for candidate in _candidates(name):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _read_bytes(path):
    """The file's content, gunzipped if it ends in .gz; ValueError if the gzip is damaged."""
    if not path.endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(
            f"{path} is not a valid gzip file ({err}); it may be truncated or damaged. Download it again."
        ) from err


def read_idx(path, magic):
    """Read one IDX file of unsigned bytes and check its header.

    Args:
        path: the file, plain or gzipped (name ends in .gz).
        magic: the expected magic number, ``IMAGES_MAGIC`` or ``LABELS_MAGIC``.

    Returns:
        uint8 array shaped by the header's dimensions, e.g. (N, 28, 28).
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path} is truncated: {len(data)} bytes, shorter than the 4-byte IDX magic number.")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path} has magic number {found} (0x{found:08x}); expected {magic} (0x{magic:08x}) for an IDX "
            f"file of {magic & 0xFF}-dimensional unsigned bytes. Is it the right file, and unzipped only once?"
        )
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    if len(data) < header:
        raise ValueError(f"{path} is truncated: {len(data)} bytes, shorter than its {header}-byte header.")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected = header + int(numpy.prod(dims))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{path} is {what}: the header announces shape {dims}, i.e. {expected} bytes in all, "
            f"but the file has {len(data)}. Download it again."
        )
    return numpy.frombuffer(data, dtype=numpy.uint8, offset=header).reshape(dims).copy()


def load_mnist(folder, split="train"):
    """MNIST images and labels of ``split`` from the IDX files in ``folder``.

    Args:
        folder: a local folder holding the IDX files (see the module docstring).
        split: 'train' (60,000 images) or 'test' (10,000, the t10k files).

    Returns:
        images: uint8 array (N, 1, 28, 28), intensities 0..255 (rows and
            columns as the file's header says: 28 x 28 for MNIST).
        labels: uint8 array (N,), digit classes 0..9.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"Unknown MNIST split {split!r}; expected 'train' or 'test'.")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"MNIST folder {folder!r} does not exist or is not a folder. {_WHERE}")
    paths = [_find(folder, name) for name in MNIST_FILES[split]]
    missing = [name for name, path in zip(MNIST_FILES[split], paths) if path is None]
    if missing:
        looked_for = "; ".join(" or ".join(_candidates(name)) for name in missing)
        raise FileNotFoundError(f"MNIST {split} files missing in {folder!r}: looked for {looked_for}. {_WHERE}")
    images = read_idx(paths[0], IMAGES_MAGIC)  # (N, rows, cols)
    labels = read_idx(paths[1], LABELS_MAGIC)  # (N,)
    if len(images) != len(labels):
        raise ValueError(
            f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels; "
            "they must come from the same split."
        )
    return images[:, None, :, :], labels  # (N, 1, rows, cols), (N,)
