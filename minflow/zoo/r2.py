"""R2: the reference RealNVP for 2D toy densities (docs/reference-problems.md, section 3).

8 affine couplings; layer k copies coordinate k % 2 and transforms the other,
z_b = x_b * exp(tanh(s_raw)) + t, with conditioner MLP 1 -> 64 -> 64 -> 2
(ReLU), hidden layers ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), last layer zero
(each coupling starts as the identity). Base N(0, I2). 35,344 parameters.
Layer 0 meets the data first (forward = data -> latent).
"""

import numpy

from ..backend import DEFAULT_DTYPE, make_rng
from ..distributions import StandardNormal
from ..flows.affine_coupling import AffineCoupling
from ..flows.flow import Flow
from ..model import FlowModel

__all__ = ["realnvp_2d"]


def realnvp_2d(n_layers=8, hidden=(64, 64), learnable_scale=False, dtype=DEFAULT_DTYPE, seed=0, rng=None):
    """The R2 model: ``n_layers`` affine couplings on 2D data over N(0, I2).

    Args:
        n_layers: number of couplings (8 in R2); layer k copies x[k % 2].
        hidden: conditioner hidden widths ((64, 64) in R2).
        learnable_scale: s = scale * tanh(s_raw) with learnable scale.
        dtype: float32 to train, float64 to check gradients.
        seed / rng: every layer is drawn from one generator, ``rng`` if given, else ``make_rng(seed)``.

    Returns:
        FlowModel with event shape (2,).
    """
    if int(n_layers) != n_layers or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer; got {n_layers!r}.")
    rng = rng if rng is not None else make_rng(seed)
    layers = []
    for k in range(int(n_layers)):
        copies = numpy.arange(2) == k % 2  # copy coordinate k % 2, transform the other
        layers.append(AffineCoupling(2, copies, hidden=hidden, learnable_scale=learnable_scale, dtype=dtype, rng=rng))
    model = FlowModel(Flow(layers), StandardNormal((2,)))
    model.sample_chunk = 1024  # sampling on a CPU: (1024, 64) activations stay in cache (see FlowModel)
    return model
