"""Coupling: a split, a conditioner and a transformer (NICE, RealNVP, neural spline flows).

Direction: forward maps data x to latent z. A split (``flows.splits``) takes
x apart into the copied part x_a and the transformed part x_b; a conditioner
network reads x_a and returns the raw parameters of an elementwise
transformer (``flows.transformers``), which maps x_b:

    params = net(x_a)                   (N, P * Fb, ...) viewed as (N, P, Fb, ...)
    forward:  z_a = x_a,  z_b = tau(x_b; params)
    inverse:  x_a = z_a,  x_b = tau^-1(z_b; params)
    log|det dz/dx| = sum of log dz_b/dx_b over the transformed entries

The Jacobian is block triangular (dz_a/dx_b = 0), so its determinant is that
of the elementwise map alone: cheap, whatever the network. Backward: the
transformer gives dx_b and dparams; dparams goes back through the net into
x_a, which also receives dz_a through the copy.
"""

from ..backend import DEFAULT_DTYPE, get_array_module
from ..nn.mlp import MLP
from ..nn.resnet import ResNet
from .base import Bijection
from .image_masks import check_image_mask
from .splits import CheckerboardSplit, FeatureSplit
from .transformers.base import Transformer

__all__ = ["IMAGE_HINT", "VECTOR_HINT", "Coupling", "image_event_shape", "mlp_conditioner", "resnet_conditioner"]

VECTOR_HINT = "For images use an image coupling (flows.image_coupling) or Squeeze."
IMAGE_HINT = "Build the mask for the image size at this point of the flow (after any Squeeze)."


def mlp_conditioner(
    features, mask, n_params, hidden=(64, 64), activation="relu", init="uniform", dtype=DEFAULT_DTYPE, *, rng
):
    """(FeatureSplit, MLP Da -> hidden -> n_params * Db with its last layer zero) for vectors (N, D)."""
    split = FeatureSplit(mask, None)
    if split.n_features != features:
        raise ValueError(f"Mask has length {split.n_features} but the data has D={features} features.")
    sizes = (split.n_copied, *hidden, n_params * split.n_transformed)
    net = MLP(sizes, activation=activation, init=init, last_init="zeros", dtype=dtype, rng=rng)
    split.to(get_array_module(net.params["linear0.W"]))
    return split, net


def resnet_conditioner(channels, mask, n_params, hidden=32, n_blocks=2, kernel_size=3, dtype=DEFAULT_DTYPE, *, rng):
    """(split, ResNet with its last convolution zero) for images (N, C, H, W).

    A channel mask (C,) gives a FeatureSplit and a ResNet Ca -> n_params * Cb;
    a spatial mask (H, W) a CheckerboardSplit and a ResNet C -> n_params * C
    (the net sees the masked image with all its channels).
    """
    mask = check_image_mask(mask)
    if mask.ndim == 2:
        split = CheckerboardSplit(mask, None)
        cond_in, n_transformed = channels, channels
    else:
        split = FeatureSplit(mask, None)
        if split.n_features != channels:
            raise ValueError(
                f"A channel mask needs one entry per channel: C={channels}, mask has {split.n_features}. "
                "Use channel_mask(C, first)."
            )
        cond_in, n_transformed = split.n_copied, split.n_transformed
    net = ResNet(
        cond_in, n_params * n_transformed, hidden, n_blocks, kernel_size, last_init="zeros", dtype=dtype, rng=rng
    )
    split.to(get_array_module(net.params["conv_in.W"]))
    return split, net, n_transformed


class Coupling(Bijection):
    """The coupling skeleton: split x, condition on x_a, transform x_b, merge.

    Args:
        split: a ``FeatureSplit`` (vectors, or channels of images) or a
            ``CheckerboardSplit`` (pixels of images).
        net: the conditioner, a building block (``nn.MLP``, ``nn.ResNet``)
            mapping x_a to transformer.n_params * Fb outputs on axis 1, where
            Fb is the number of transformed features or channels (for a
            checkerboard: all C channels). Its last layer usually starts at
            zero, so that the coupling starts as the identity.
        transformer: an elementwise ``Transformer`` (``Affine``,
            ``Additive``, ``RationalQuadraticSpline``).
        event_shape: one sample's shape, None for a free size: (D,),
            (C, None, None) or (C, H, W).
        hint: the last sentence of the error for a wrongly shaped input.

    Shapes:
        x, z: (N, D) or (N, C, H, W); logdet: (N,). Parameters (N, P, Fb, ...):
        the net's outputs [0, Fb) are parameter 0 of every transformed entry,
        [Fb, 2 Fb) parameter 1, and so on (a reshape, no copy).

    Caches:
        a marker per pass, so that a backward runs only after its own pass:
        the net keeps the caches of its last pass only, so running one
        direction drops the other direction's marker and transformer cache
        (its backward is then a clear error, never a silently wrong
        gradient). The transformer caches what its own backward needs.
    """

    stateless = True  # the conditioner is a plain network: its caches are the only state

    def __init__(self, split, net, transformer, event_shape, hint=""):
        super().__init__()
        if not isinstance(transformer, Transformer):
            raise TypeError(f"Coupling expects a Transformer (flows.transformers); got {type(transformer).__name__}.")
        self.split = split
        self.mask = split.mask  # bool, True = copied
        self.net = self.add_child("net", net)
        self.transformer = self.add_child("transformer", transformer)
        self.event_shape = tuple(event_shape)
        n_fixed = event_shape.index(None) if None in event_shape else len(event_shape)
        self._fixed = self.event_shape[:n_fixed]  # the sizes an input must have (C, or C, H, W, or D)
        self.hint = hint

    @classmethod
    def for_vectors(cls, features, mask, transformer, hidden=(64, 64), activation="relu", dtype=DEFAULT_DTYPE, *, rng):
        """A coupling on (N, D) with an MLP conditioner (see ``mlp_conditioner``)."""
        split, net = mlp_conditioner(
            features, mask, transformer.n_params, hidden, activation, "uniform", dtype, rng=rng
        )
        return cls(split, net, transformer, (features,), VECTOR_HINT)

    @classmethod
    def for_images(cls, channels, mask, transformer, hidden=32, n_blocks=2, kernel_size=3, dtype=DEFAULT_DTYPE, *, rng):
        """A coupling on (N, C, H, W) with a ResNet conditioner (see ``resnet_conditioner``)."""
        split, net, _ = resnet_conditioner(
            channels, mask, transformer.n_params, hidden, n_blocks, kernel_size, dtype, rng=rng
        )
        return cls(split, net, transformer, image_event_shape(channels, split.mask), IMAGE_HINT)

    def _move_fixed_arrays(self, xp):
        super()._move_fixed_arrays(xp)
        self.split.to(xp)

    def _check_input(self, x, name):
        shape = self.event_shape
        if x.ndim != 1 + len(shape) or x.shape[1 : 1 + len(self._fixed)] != self._fixed:
            expected = ", ".join("HW"[i - 1] if e is None else str(e) for i, e in enumerate(shape))
            raise ValueError(
                f"{type(self).__name__} expects {name} of shape (N, {expected}); got {tuple(x.shape)}. {self.hint}".rstrip()
            )

    # -- the conditioner stage: x_a -> params, and back ----------------------

    def _params(self, x_a):
        """(params (N, P, Fb, ...), cache for ``_params_backward``) from the copied part."""
        h = self.net.forward(x_a)  # (N, P * Fb, ...)
        return h.reshape(h.shape[0], self.transformer.n_params, -1, *h.shape[2:]), None

    def _params_backward(self, dparams, cache):
        """dL/dx_a through the conditioner, from dL/dparams."""
        return self.net.backward(dparams.reshape(dparams.shape[0], -1, *dparams.shape[3:]))  # (N, P * Fb, ...)

    # -- the four passes --------------------------------------------------------

    def _start_pass(self, other):
        """The net's caches are about to be overwritten: drop the other pass's marker and transformer cache."""
        for module in (self, self.transformer):
            if hasattr(module, "_caches"):
                module._caches.pop(other, None)

    def forward(self, x):
        return self._run(x, "x", "forward", "inverse", self.transformer.forward)

    def inverse(self, z):
        return self._run(z, "z", "inverse", "forward", self.transformer.inverse)

    def backward(self, dz, dlogdet):
        return self._run_backward(dz, dlogdet, "forward", "backward", self.transformer.backward)

    def inverse_backward(self, dx, dlogdet):
        return self._run_backward(dx, dlogdet, "inverse", "inverse_backward", self.transformer.inverse_backward)

    def _run(self, inp, name, direction, other, transform):
        """One pass (forward: inp = x; inverse: inp = z): copy a, condition on it, transform b."""
        self._check_input(inp, name)
        self._start_pass(other)
        a, b = self.split.split(inp)
        params, cache = self._params(a)  # (N, P, Fb, ...)
        out_b, logdet = transform(b, params)  # logdet per transformed entry
        self._save_cache(direction, (cache,))
        return self.split.merge(a, out_b), self.split.sum_logdet(logdet)

    def _run_backward(self, dout, dlogdet, direction, caller, transform_backward):
        """The gradient through ``_run``: the transformer, then the conditioner, then the copy."""
        (cache,) = self._take_cache(direction, caller)
        dout_a, dout_b = self.split.merge_backward(dout)
        dinp_b, dparams = transform_backward(dout_b, self.split.spread_dlogdet(dlogdet, dout_b.ndim))
        # out_a = inp_a, and inp_a also feeds the conditioner
        return self.split.split_backward(dout_a + self._params_backward(dparams, cache), dinp_b)


def image_event_shape(channels, mask):
    """(C, H, W) for a spatial (H, W) mask, (C, None, None) (any size) for a channel mask (C,)."""
    return (int(channels), *mask.shape) if mask.ndim == 2 else (int(channels), None, None)
