"""Conditional flow matching: train a velocity field by regression, with no log-determinant.

Lipman et al. (2023, arXiv:2210.02747), with the straight (optimal-transport,
sigma_min = 0) conditional paths, the same as rectified flow (Liu, Gong &
Liu 2022, arXiv:2209.03003). Time runs from noise to data:

    x0 ~ N(0, I)   (noise, t = 0),    x1 ~ data   (t = 1),    t ~ U[0, 1]
    x_t = (1 - t) x0 + t x1           a point on the straight line from x0 to x1
    u   = x1 - x0                     its velocity dx_t/dt along that line

    L = (1/N) sum_n |v(x_t_n, t_n) - u_n|^2
    dL/dv = (2/N) (v - u)             (N, D), then one backward pass through v

The minimiser over all fields is v*(x, t) = E[x1 - x0 | x_t = x], the field
whose flow carries N(0, I) at t = 0 to the data at t = 1 (Lipman et al.,
Theorem 2): one regression target per sample, no ODE solve and no divergence
during training. The likelihood comes afterwards, from ``ContinuousFlowModel``.
"""

from ..backend import get_array_module, make_rng
from ..checks import check_positive_int
from ..optim import Adam
from ..train import fit

__all__ = ["fit_flow_matching", "flow_matching_loss_and_backward"]


def flow_matching_loss_and_backward(velocity, x1, rng):
    """The conditional flow matching loss on data x1 (N, D); adds its gradient to ``velocity.grads``.

    Args:
        velocity: a ``VelocityField`` (or the model's ``.velocity``).
        x1: (N, D) data samples (t = 1).
        rng: draws the noise x0 (N, D) and the times t (N,), in that order.

    Returns:
        the loss, a 0-d array (mean over the batch of the squared error, summed over D).
    """
    xp = get_array_module(x1)
    n = x1.shape[0]
    x0 = xp.asarray(rng.standard_normal(x1.shape), dtype=x1.dtype)  # (N, D) noise at t = 0
    t = xp.asarray(rng.uniform(0.0, 1.0, size=n), dtype=x1.dtype)  # (N,)
    x_t = (1 - t)[:, None] * x0 + t[:, None] * x1  # (N, D) on the straight line
    u = x1 - x0  # (N, D) the target velocity
    r = velocity.forward(x_t, t) - u  # (N, D) residual
    velocity.backward((2.0 / n) * r)  # dL/dv = 2 (v - u) / N
    return (r * r).sum(axis=1).mean()


def fit_flow_matching(model, sample, n_steps, batch_size=512, lr=1e-3, seed=0, optimizer=None, **kwargs):
    """Flow matching on fresh samples each step (R2's data recipe: batch 512, Adam 1e-3).

    Args:
        model: a ``ContinuousFlowModel`` (its ``velocity`` is trained).
        sample: ``f(n, rng) -> (n, D)`` exact samples of the data.
        n_steps, batch_size, lr: the recipe.
        seed: seeds the one generator that draws the data, the noise and the times.
        optimizer: default Adam(lr) over ``model.params``.
        kwargs: passed to ``train.fit`` (log_every, progress, desc, callback).

    Returns:
        the history of ``train.fit``: "step", "loss" (the flow matching loss,
        not an NLL), "seconds".
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if not callable(sample):
        raise TypeError(f"sample must be a function f(n, rng) -> (n, D) array; got {type(sample).__name__}.")
    rng = make_rng(seed)
    optimizer = optimizer or Adam(model.params, model.grads, lr=lr)
    dtype = model._param_dtype()

    def loss_and_backward(step):
        x1 = sample(batch_size, rng)
        if step == 0:  # check the data once, in full
            model.check_data(x1, name="sample(batch_size, rng)")
        return flow_matching_loss_and_backward(model.velocity, x1.astype(dtype, copy=False), rng)

    return fit(model, loss_and_backward, n_steps, optimizer, **kwargs)
