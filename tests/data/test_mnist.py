"""Tests of minflow/data/mnist.py on small IDX files written here (plain and gzipped)."""

import gzip
import os
import pathlib

import numpy
import pytest

from minflow.data.mnist import IMAGES_MAGIC, LABELS_MAGIC, load_mnist


def _idx_bytes(array, magic):
    """The IDX encoding of a uint8 array: magic, big-endian int32 dims, raw bytes."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(numpy.uint8).tobytes()


def _write(path, data, gz):
    if gz:
        path += ".gz"
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


def _write_split(folder, prefix, n=5, gz=False, seed=0, dotted=False):
    rng = numpy.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
    labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
    sep = "." if dotted else "-"
    paths = (
        _write(os.path.join(folder, f"{prefix}-images{sep}idx3-ubyte"), _idx_bytes(images, IMAGES_MAGIC), gz),
        _write(os.path.join(folder, f"{prefix}-labels{sep}idx1-ubyte"), _idx_bytes(labels, LABELS_MAGIC), gz),
    )
    return images, labels, paths


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("split, prefix", [("train", "train"), ("test", "t10k")])
def test_load_mnist_reads_idx_files(tmp_path, gz, split, prefix):
    images, labels, _ = _write_split(str(tmp_path), prefix, n=5, gz=gz)
    x, y = load_mnist(tmp_path, split)
    assert x.shape == (5, 1, 28, 28) and x.dtype == numpy.uint8
    assert y.shape == (5,) and y.dtype == numpy.uint8
    numpy.testing.assert_array_equal(x[:, 0], images)
    numpy.testing.assert_array_equal(y, labels)
    x[...] = 0  # writable, independent of the file


def test_load_mnist_accepts_dotted_file_names(tmp_path):
    images, labels, _ = _write_split(str(tmp_path), "t10k", n=3, dotted=True)
    x, y = load_mnist(str(tmp_path), "test")
    numpy.testing.assert_array_equal(x[:, 0], images)
    numpy.testing.assert_array_equal(y, labels)


def test_load_mnist_rejects_missing_folder(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"nowhere.*does not exist.*does not download.*yann\.lecun\.com"):
        load_mnist(missing)


def test_load_mnist_lists_missing_files(tmp_path):
    _write_split(str(tmp_path), "train")  # train present, test absent
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, "test")
    message = str(info.value)
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in message
    assert str(tmp_path) in message and "does not download" in message


def test_load_mnist_lists_only_the_missing_file(tmp_path):
    _, _, (_, labels_path) = _write_split(str(tmp_path), "train")
    os.remove(labels_path)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, "train")
    assert "train-labels-idx1-ubyte" in str(info.value) and "train-images" not in str(info.value)


def test_load_mnist_rejects_wrong_magic_number(tmp_path):
    _, labels, (images_path, _) = _write_split(str(tmp_path), "train")
    with open(images_path, "wb") as f:  # a labels file where the images belong
        f.write(_idx_bytes(labels, LABELS_MAGIC))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte has magic number 2049.*expected 2051"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("cut", [2, 10, 100])
def test_load_mnist_rejects_truncated_plain_file(tmp_path, cut):
    _, _, (images_path, _) = _write_split(str(tmp_path), "train")
    data = pathlib.Path(images_path).read_bytes()
    with open(images_path, "wb") as f:
        f.write(data[:cut] if cut < 16 else data[:-cut])
    with pytest.raises(ValueError, match="is truncated"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_file_longer_than_header(tmp_path):
    _, _, (_, labels_path) = _write_split(str(tmp_path), "train")
    with open(labels_path, "ab") as f:
        f.write(b"\x00")
    with pytest.raises(ValueError, match=r"longer than its header says.*shape \(5,\)"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_truncated_gzip(tmp_path):
    _, _, (images_path, _) = _write_split(str(tmp_path), "train", gz=True)
    data = pathlib.Path(images_path).read_bytes()
    with open(images_path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"idx3-ubyte\.gz is not a valid gzip file"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_mismatched_counts(tmp_path):
    _write_split(str(tmp_path), "train", n=5)
    labels = numpy.zeros(4, dtype=numpy.uint8)
    with open(os.path.join(tmp_path, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(_idx_bytes(labels, LABELS_MAGIC))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="Unknown MNIST split 'valid'"):
        load_mnist(tmp_path, "valid")
