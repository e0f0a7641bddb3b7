"""One-off: export the 8x8 digits from scikit-learn into ``minflow/data/digits.npz``.

Not a runtime dependency: minflow ships the resulting file and never imports
scikit-learn. To reproduce the file (scikit-learn bundles the data, nothing
is downloaded):

    pip install --target /tmp/skl scikit-learn
    PYTHONPATH=/tmp/skl python tools/export_digits.py

The source is the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), as shipped by
``sklearn.datasets.load_digits``: 1,797 images, 8x8, integer intensities
0..16. See ``minflow/data/DIGITS.md``.
"""

import hashlib
import os

import numpy
import sklearn
from sklearn.datasets import load_digits

OUT = os.path.join(os.path.dirname(__file__), os.pardir, "minflow", "data", "digits.npz")


def main():
    bunch = load_digits()
    images = bunch.images  # (1797, 8, 8) float64 holding integers 0..16
    labels = bunch.target  # (1797,) int
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        raise SystemExit(f"unexpected shapes {images.shape}, {labels.shape}")
    if not (numpy.array_equal(images, numpy.round(images)) and images.min() == 0 and images.max() == 16):
        raise SystemExit("expected integer intensities 0..16")
    images = images.astype(numpy.uint8)
    labels = labels.astype(numpy.uint8)
    numpy.savez_compressed(os.path.normpath(OUT), images=images, labels=labels)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    print(f"scikit-learn {sklearn.__version__}: wrote {os.path.normpath(OUT)}")
    print(f"images {images.shape} {images.dtype}, labels {labels.shape} {labels.dtype}")
    print(f"sha256(images bytes + labels bytes) = {digest}")


if __name__ == "__main__":
    main()
