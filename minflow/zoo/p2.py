"""P2: planar (and radial) flows fitted to the energy targets by reverse KL (docs/reference-problems.md, section 3).

K planar layers f(z) = z + u_hat tanh(w.z + b) over N(0, I2), in the sampling
direction (Rezende & Mohamed 2015, arXiv:1505.05770, section 6.1 and Figure 3),
u ~ U(-sqrt 2, sqrt 2)^2, w ~ U(-1, 1)^2, b = 0; trained by reverse KL on fresh
base noise, batch 256, Adam lr 5e-3, 10,000 steps, in float32:

    L = (1/N) sum_n [log q(x_n) + U(x_n) + wall(x_n)],  x_n = f(z_n), z_n ~ N(0, I)
    KL(q || p) = E_q[log q + U + wall] + ln Z   (the loss omits the constant ln Z)

The gradient runs through ``inverse_backward`` of every layer, so any flow
whose layers have one (planar, radial, couplings, ...) trains the same way:
``fit_reverse_kl(realnvp_2d(), ...)`` is R2 trained by reverse KL.
"""

from ..backend import DEFAULT_DTYPE, make_rng
from ..distributions import StandardNormal
from ..flows.flow import Flow
from ..flows.planar import Planar
from ..flows.radial import Radial
from ..model import FlowModel
from ..optim import Adam
from ..train import fit

__all__ = ["P2_RECIPE", "fit_reverse_kl", "planar_2d", "radial_2d"]

# The P2 training recipe of docs/reference-problems.md section 3.
P2_RECIPE = {"batch_size": 256, "lr": 5e-3, "n_steps": 10_000}


def _stack(layer_class, n_layers, features, dtype, seed, rng):
    if int(n_layers) != n_layers or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer; got {n_layers!r}.")
    rng = rng if rng is not None else make_rng(seed)
    layers = [layer_class(features, dtype=dtype, rng=rng) for _ in range(int(n_layers))]
    return FlowModel(Flow(layers), StandardNormal((features,)))


def planar_2d(n_layers=8, dtype=DEFAULT_DTYPE, seed=0, rng=None, features=2):
    """The P2 model: ``n_layers`` planar layers over N(0, I), P2's initialisation.

    Args:
        n_layers: K (2, 8 or 32 in P2).
        dtype: float32 to train, float64 to check gradients.
        seed / rng: every layer is drawn from one generator, ``rng`` if given, else ``make_rng(seed)``. features: D (2 for the energy targets).

    Returns:
        FlowModel with event shape (features,); sampling (``inverse``) is closed
        form, ``log_prob`` inverts each layer numerically.
    """
    return _stack(Planar, n_layers, features, dtype, seed, rng)


def radial_2d(n_layers=32, dtype=DEFAULT_DTYPE, seed=0, rng=None, features=2):
    """``n_layers`` radial layers over N(0, I) (Pyro's initialisation, see ``Radial``).

    Args and returns as ``planar_2d``; ``log_prob`` inverts each layer through
    the closed-form root of its radius equation.
    """
    return _stack(Radial, n_layers, features, dtype, seed, rng)


def fit_reverse_kl(
    model,
    target,
    n_steps=P2_RECIPE["n_steps"],
    batch_size=P2_RECIPE["batch_size"],
    lr=P2_RECIPE["lr"],
    seed=0,
    optimizer=None,
    **kwargs,
):
    """Minimise E_q[log q + U + wall] by Adam on fresh base noise each step.

    Args:
        model: a FlowModel whose layers all have ``inverse_backward``.
        target: an energy with ``energy(x)`` and ``grad(x)`` (``data.energy.EnergyTarget``).
        n_steps, batch_size, lr: the recipe (P2: 10,000, 256, 5e-3).
        seed: seeds the base-noise stream, so a run is reproducible.
        optimizer: default Adam(lr).
        kwargs: passed to ``train.fit`` (log_every, progress, desc, callback).

    Returns:
        the history of ``fit``; its losses are KL(q || p) - ln Z estimates.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    rng = make_rng(seed, model.xp)
    optimizer = optimizer or Adam(model.params, model.grads, lr=lr)

    def loss_and_backward(step):
        return model.reverse_kl_and_backward(target, int(batch_size), rng)

    return fit(model, loss_and_backward, n_steps, optimizer, **kwargs)
