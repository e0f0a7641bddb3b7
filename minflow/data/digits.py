"""The 8x8 handwritten digits of the D8 reference problem, shipped with minflow.

Data: the 1,797 images of the UCI "Optical Recognition of Handwritten Digits"
data set (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), 8x8 pixels with
integer intensities 0..16 (each pixel counts the "on" pixels of a 4x4 block
of a 32x32 bitmap). They are stored in ``digits.npz`` next to this file
(``images`` uint8 (1797, 8, 8), ``labels`` uint8 (1797,)), exported once from
scikit-learn by ``tools/export_digits.py``; see ``DIGITS.md``.

The fixed split (docs/reference-problems.md, D8):

    perm  = numpy.random.default_rng(0).permutation(1797)
    train = images[perm[:1497]]     # 1,497 images, in permutation order
    test  = images[perm[1497:]]     #   300 images, in permutation order

``train_val_split`` carves a validation set out of the training images with
its own seed; the test images stay untouched until the final report.
"""

import functools
import os

import numpy

__all__ = ["N_IMAGES", "N_LEVELS", "N_TEST", "N_TRAIN", "SPLIT_SEED", "load_digits", "split_indices", "train_val_split"]

N_LEVELS = 17  # intensities 0..16
N_IMAGES = 1797
N_TRAIN = 1497
N_TEST = N_IMAGES - N_TRAIN  # 300
SPLIT_SEED = 0

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
_SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _read():
    """images (1797, 8, 8) and labels (1797,), both uint8, read once and frozen."""
    if not os.path.exists(_PATH):
        raise FileNotFoundError(
            f"The digits data file is missing: {_PATH}. It ships with minflow; "
            "reinstall the package (`pip install .` includes minflow/data/*.npz) "
            "or restore it with `git checkout minflow/data/digits.npz`."
        )
    with numpy.load(_PATH, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def split_indices(split):
    """Indices into the 1,797 images for ``split``: 'train', 'test' or 'all'.

    'train' is ``perm[:1497]`` and 'test' ``perm[1497:]`` with
    ``perm = numpy.random.default_rng(0).permutation(1797)``; 'all' is 0..1796.
    """
    if split not in _SPLITS:
        raise ValueError(f"Unknown digits split {split!r}; expected one of {_SPLITS}.")
    if split == "all":
        return numpy.arange(N_IMAGES)
    perm = numpy.random.default_rng(SPLIT_SEED).permutation(N_IMAGES)
    return perm[:N_TRAIN] if split == "train" else perm[N_TRAIN:]


def load_digits(split="train", with_labels=False):
    """The digits of ``split`` as integer images, ready for a 1x8x8 flow.

    Args:
        split: 'train' (1,497 images), 'test' (300) or 'all' (1,797, in the
            original order).
        with_labels: also return the digit classes 0..9.

    Returns:
        images: uint8 array (N, 1, 8, 8) with values 0..16 (``N_LEVELS`` = 17
        levels); a fresh copy the caller may modify. Dequantise before
        training, e.g. ``(x + u) / 17`` with u ~ U[0, 1).
        labels (only if ``with_labels``): uint8 array (N,).
    """
    idx = split_indices(split)
    images, labels = _read()
    x = images[idx][:, None, :, :]  # (N, 8, 8) -> (N, 1, 8, 8), a copy
    if with_labels:
        return x, labels[idx]
    return x


def train_val_split(images, n_val, seed):
    """Split ``images`` into (train, val), holding out ``n_val`` of them.

    ``perm = numpy.random.default_rng(seed).permutation(N)``; val is
    ``images[perm[:n_val]]`` and train ``images[perm[n_val:]]``. Works on any
    array whose first axis indexes samples (a labels array split with the
    same ``n_val`` and ``seed`` lines up with the images).

    Args:
        images: array (N, ...), e.g. ``load_digits("train")``.
        n_val: number of validation samples, 1 <= n_val <= N - 1.
        seed: seed of the permutation (independent of the train/test split).

    Returns:
        train (N - n_val, ...), val (n_val, ...): copies.
    """
    n = len(images)
    if int(n_val) != n_val or not 1 <= n_val <= n - 1:
        raise ValueError(
            f"n_val must be an integer between 1 and {n - 1} (the number of images minus one); got {n_val!r}."
        )
    perm = numpy.random.default_rng(seed).permutation(n)
    return images[perm[int(n_val) :]], images[perm[: int(n_val)]]
