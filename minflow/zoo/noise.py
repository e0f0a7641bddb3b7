"""TarFlow's training recipe: Gaussian noise in logit space, then one denoising step along the model's score.

Zhai et al. (2025), "Normalizing Flows are Capable Generative Models",
arXiv:2412.06329, sections 2.3 and 2.4. A flow trained on data that lie
on (or near) a thin set, as pixels quantised to 17 levels and dequantised
by a uniform draw inside each bin, puts a density with sharp walls around
every bin; the paper finds that training on x + sigma * eps, Gaussian noise
wider than the quantisation, gives a smoother density and better samples,
and that samples of the noisy model are then cleaned by one step of
Tweedie's formula with the model's own score:

    y     = x + sigma eps,  eps ~ N(0, I)          (the noisy variable; the flow models p(y))
    x_hat = y + sigma^2 grad_y log p(y)            (E[x | y], exact for the true p of y)

Where the noise goes. The models here read dequantised pixels v in [0, 1]
and start with ``Logit(a)``, y = logit(a + (1 - 2a) v), which is NaN
outside [0, 1]; Gaussian noise on v would leave that interval. The noise
is therefore added after the logit, y_noisy = logit(...) + sigma eps: every
y is valid, the layers after the logit model p(y_noisy), and Tweedie's
step (derived for additive Gaussian noise) holds in that space. For
training, the noisy y is mapped back through the logit's inverse, v~ =
Logit^-1(y_noisy) (``LogitNoise``): the whole model is trained on v~ and
its gradient is that of -log p(y_noisy) (the logit's log-det does not
depend on the weights). v~ lies in (-a / (1 - 2a), (1 - a) / (1 - 2a)),
slightly wider than [0, 1], where the logit is still finite.

Which bits/dim. ``evaluate_bpd`` on clean dequantised test digits gives the
bits/dim of the model's density of v (a valid density whatever it was
trained on, and a bound on the discrete data's likelihood under uniform
dequantisation): that is the number compared with D8 and the noise-free
TarFlow. The density of the noisy variable (``noisy_bpd``) is of a
different, wider distribution and is not a bound on the digits'
likelihood; it is reported beside it, labelled.
"""

import math

import numpy

from ..backend import get_array_module, to_device, to_numpy
from ..data.digits import N_LEVELS
from ..flows.flow import Flow
from ..flows.preprocessing import Logit, dequantize
from ..metrics import bits_per_dim
from ..model import FlowModel

__all__ = ["LogitNoise", "denoise", "logit_space_model", "noisy_bpd", "sample_denoised"]


def logit_space_model(model):
    """(the model's first layer, a ``Logit``; the model of y = logit(...) made of its other layers).

    The second model shares the layers (and so the weights) of ``model``:
    its ``log_prob`` is log p(y) of the variable after the logit, its
    ``log_prob_backward`` returns grad_y. Shapes: y (N, *event_shape), as v.
    """
    layers = model.flow.layers
    if not layers or not isinstance(layers[0], Logit):
        raise ValueError("logit_space_model needs a model whose first layer is Logit (e.g. zoo.tarflow_digits()).")
    return layers[0], FlowModel(Flow(layers[1:]), model.base, event_shape=model.event_shape)


class LogitNoise:
    """``augment`` for ``train.fit_epochs``: v -> Logit^-1(Logit(v) + sigma eps), on the host.

    Args:
        alpha: the model's logit margin a (``D8_ALPHA`` = 0.05).
        sigma: the noise's standard deviation in logit space (> 0).

    Shapes: v (B, C, H, W) -> the same; eps drawn from the training generator.
    """

    def __init__(self, alpha, sigma):
        if not sigma > 0:
            raise ValueError(f"LogitNoise sigma must be > 0; got {sigma!r}.")
        self.logit = Logit(alpha)  # a layer of its own: the model's keeps its caches
        self.sigma = float(sigma)

    def __call__(self, v, rng):
        y, _ = self.logit.forward(v)
        y = y + (self.sigma * rng.standard_normal(v.shape)).astype(v.dtype)  # y + sigma eps
        return self.logit.inverse(y)[0].astype(v.dtype)


def denoise(model, y, sigma):
    """One step of Tweedie's formula in logit space: y + sigma^2 grad_y log p(y), shape of y.

    ``model`` is a logit-space model (``logit_space_model``); its
    ``log_prob_backward`` with dL/dlog p = 1 per sample returns grad_y of
    sum_n log p(y_n), whose n-th row is the score of y_n. The pass also adds
    to the weights' gradients: they are zeroed after it (call it between
    optimizer steps, not inside one).
    """
    xp = get_array_module(y)
    model.log_prob(y)
    score = model.log_prob_backward(xp.ones(y.shape[0], dtype=y.dtype))  # (N, *event_shape)
    model.zero_grads()
    return y + sigma**2 * score


def sample_denoised(model, n, sigma, rng=None, temperature=1.0):
    """(v, v_denoised): n samples of ``model`` (trained with ``LogitNoise(sigma)``) before and after ``denoise``.

    Both in pixel space (Logit^-1), clipped to [0, 1] for display; (n, *event_shape).
    """
    logit, y_model = logit_space_model(model)
    y = y_model.sample(n, rng=rng, temperature=temperature)  # the noisy variable
    y_hat = denoise(y_model, y, sigma)
    xp = get_array_module(y)
    back = Logit(logit.alpha)
    return xp.clip(back.inverse(y)[0], 0, 1), xp.clip(back.inverse(y_hat)[0], 0, 1)


def noisy_bpd(model, images, sigma, n_draws=10, seed=0, n_levels=N_LEVELS):
    """Bits/dim of v~ = Logit^-1(Logit(v) + sigma eps) under ``model``: the density it was trained on.

    Not a bound on the discrete data's likelihood (v~ leaves the pixel's bin);
    reported beside ``evaluate_bpd``'s clean number. Fixed draws (``seed``).
    """
    images = numpy.asarray(images)
    xp, dtype = model.xp, model.dtype
    rng = numpy.random.default_rng(seed)
    noise = LogitNoise(model.flow.layers[0].alpha, sigma)
    d = math.prod(images.shape[1:])
    log_q = []
    for _ in range(n_draws):
        v, _ = dequantize(images, n_levels, rng, dtype)
        log_q.append(to_numpy(model.log_prob(to_device(noise(v, rng), xp))))
    return float(bits_per_dim(numpy.stack(log_q), d, n_levels).mean())
