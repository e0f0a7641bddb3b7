"""Tests of minflow/data/digits.py: the shipped 8x8 digits and their fixed split."""

import hashlib

import numpy
import pytest

from minflow.data.digits import N_LEVELS, N_TEST, N_TRAIN, load_digits, split_indices, train_val_split

# sha256(images.tobytes() + labels.tobytes()) of the (1797, 8, 8) / (1797,) uint8 arrays, as in DIGITS.md
ALL_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def _sha(images, labels):
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def test_digits_file_matches_recorded_checksum():
    images, labels = load_digits("all", with_labels=True)
    assert _sha(images[:, 0], labels) == ALL_SHA256


def test_digits_shapes_dtypes_and_values():
    for split, n in (("train", N_TRAIN), ("test", N_TEST), ("all", 1797)):
        images, labels = load_digits(split, with_labels=True)
        assert images.shape == (n, 1, 8, 8) and images.dtype == numpy.uint8
        assert labels.shape == (n,) and labels.dtype == numpy.uint8
    images, labels = load_digits("all", with_labels=True)
    assert N_LEVELS == 17 and images.min() == 0 and images.max() == N_LEVELS - 1
    assert numpy.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert (N_TRAIN, N_TEST) == (1497, 300)


def test_digits_split_is_the_seed0_permutation():
    all_images, all_labels = load_digits("all", with_labels=True)
    perm = numpy.random.default_rng(0).permutation(1797)
    train, train_labels = load_digits("train", with_labels=True)
    test, test_labels = load_digits("test", with_labels=True)
    numpy.testing.assert_array_equal(train, all_images[perm[:1497]])
    numpy.testing.assert_array_equal(test, all_images[perm[1497:]])
    numpy.testing.assert_array_equal(train_labels, all_labels[perm[:1497]])
    numpy.testing.assert_array_equal(test_labels, all_labels[perm[1497:]])
    assert sorted(numpy.concatenate([split_indices("train"), split_indices("test")]).tolist()) == list(range(1797))
    # pins the split itself: a change in NumPy's permutation stream would move images between train and test
    assert split_indices("test")[:5].tolist() == [680, 1420, 1396, 1555, 1022]


def test_digits_images_without_labels_and_fresh_copies():
    a = load_digits("test")
    assert isinstance(a, numpy.ndarray) and a.shape == (300, 1, 8, 8)
    a[...] = 0
    assert load_digits("test").max() == 16


def test_digits_rejects_unknown_split():
    with pytest.raises(ValueError, match=r"Unknown digits split 'val'.*'train', 'test', 'all'"):
        load_digits("val")


def test_train_val_split_partitions_images_reproducibly():
    images = numpy.arange(100)[:, None] * numpy.ones((1, 3), dtype=int)  # row i holds i
    train, val = train_val_split(images, 20, seed=1)
    assert train.shape == (80, 3) and val.shape == (20, 3)
    assert sorted(numpy.concatenate([train[:, 0], val[:, 0]]).tolist()) == list(range(100))
    perm = numpy.random.default_rng(1).permutation(100)
    numpy.testing.assert_array_equal(val[:, 0], perm[:20])
    _, again_val = train_val_split(images, 20, seed=1)
    numpy.testing.assert_array_equal(again_val, val)
    assert not numpy.array_equal(train_val_split(images, 20, seed=2)[1], val)


def test_train_val_split_lines_up_images_and_labels():
    images, labels = load_digits("train", with_labels=True)
    _, val_images = train_val_split(images, 97, seed=3)
    _, val_labels = train_val_split(labels, 97, seed=3)
    all_images, all_labels = load_digits("all", with_labels=True)
    for img, lab in zip(val_images[:10], val_labels[:10]):
        matches = numpy.flatnonzero((all_images == img).all(axis=(1, 2, 3)))
        assert lab in all_labels[matches]


@pytest.mark.parametrize("n_val", [0, 1497, -1, 2.5])
def test_train_val_split_rejects_bad_n_val(n_val):
    with pytest.raises(ValueError, match="n_val must be an integer between 1 and 1496"):
        train_val_split(load_digits("train"), n_val, seed=0)
