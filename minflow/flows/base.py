"""Bijection: the layer contract every invertible layer follows.

Direction convention (RealNVP's f): ``forward`` maps data x to latent z, the
direction in which the density is evaluated and maximum likelihood is
trained; ``inverse`` maps z to x, the direction in which samples are drawn.

    z, logdet = layer.forward(x)              # logdet = log|det dz/dx|, shape (N,)
    x, logdet = layer.inverse(z)              # logdet = log|det dx/dz|, shape (N,)
    dx = layer.backward(dz, dlogdet)          # through the last forward
    dz = layer.inverse_backward(dx, dlogdet)  # through the last inverse

``backward`` returns dL/dx given dL/dz and dL/dlogdet (shape (N,)), and adds
dL/dtheta to ``layer.grads``; ``inverse_backward`` does the same through the
last inverse. Each pass saves what its own backward needs, under its own
name, so a round trip does not overwrite the other direction's cache.
"""

from ..nn.module import Module

__all__ = ["Bijection", "Inverse"]


class Bijection(Module):
    """Base class of invertible layers; see the module docstring for the contract.

    Subclasses implement ``forward``, ``inverse``, ``backward`` and
    ``inverse_backward``. A layer whose inverse is numerical says so in a
    ``Note:`` of its docstring.
    """

    def forward(self, x):
        raise NotImplementedError

    def inverse(self, z):
        raise NotImplementedError

    def backward(self, dz, dlogdet):
        raise NotImplementedError

    def inverse_backward(self, dx, dlogdet):
        raise NotImplementedError


class Inverse(Bijection):
    """The inverse of a layer: its ``forward`` is the layer's ``inverse``.

    ``Flow([layer, Inverse(layer)])`` is the identity with zero log-det, a
    handy round-trip check. Parameters are the wrapped layer's (shared).

    Args:
        layer: any Bijection.
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = self.add_child("layer", layer)

    def forward(self, x):
        return self.layer.inverse(x)

    def inverse(self, z):
        return self.layer.forward(z)

    def backward(self, dz, dlogdet):
        return self.layer.inverse_backward(dz, dlogdet)

    def inverse_backward(self, dx, dlogdet):
        return self.layer.backward(dx, dlogdet)
