"""Transformer: an elementwise monotone map y = tau(x; params), the half of a flow layer that transforms.

A coupling layer and an autoregressive layer both split into a *conditioner*
(a network that reads some entries and outputs parameters) and a
*transformer* (an invertible map of each remaining entry, given its
parameters). This file states the transformer's contract; the same objects
serve both kinds of layer unchanged (nflows and zuko separate the two ideas
the same way).

Direction: forward maps data x to latent y (the density direction).

    y, logdet = tau.forward(x, params)          # logdet[i] = log dy_i/dx_i, shape x.shape
    x, logdet = tau.inverse(y, params)          # logdet[i] = log dx_i/dy_i = -(forward's)
    dx, dparams = tau.backward(dy, dlogdet)     # through the last forward
    dy, dparams = tau.inverse_backward(dx, dlogdet)  # through the last inverse

Shapes: x, y: (N, *S); params: (N, P, *S) with P = ``tau.n_params`` raw
parameters per entry on axis 1; dlogdet: x.shape or broadcastable to it
(e.g. (N, 1) for a per-sample dL/dlogdet); dparams: params' shape.

The log-det is returned per entry, not summed: the layer decides which
entries count (a checkerboard coupling drops its copied pixels) and how to
reduce them (an autoregressive sampling pass keeps one dimension at a time).

Cache policy, for every transformer: each pass keeps what its own backward
needs under its direction's name ("forward" or "inverse"), so a round trip
does not overwrite the other direction's cache; the backward consumes it
(a second backward is a clear error). What is kept is the pass's x (its input
in forward, its output in inverse) and the parameter-derived arrays that
would cost more than one elementwise function to rebuild; cheap functions of
them (exp(s)) are recomputed.
"""

from ...nn.module import Module

__all__ = ["Transformer"]


class Transformer(Module):
    """Base class of elementwise transformers; see the module docstring for the contract.

    Subclasses set ``n_params`` and implement ``forward``, ``inverse``,
    ``backward`` and ``inverse_backward``. A transformer may own learnable
    parameters of its own (``params``/``grads``, accumulated with ``+=``).
    """

    n_params = None

    def check_params(self, x, params):
        """Raise a clear error unless params has shape (N, P, *S) for x of shape (N, *S)."""
        if params.shape[1:2] != (self.n_params,) or params.shape[2:] != x.shape[1:] or len(params) != len(x):
            expected = (x.shape[0], self.n_params, *x.shape[1:])
            raise ValueError(
                f"{type(self).__name__} expects params of shape (N, P, *S) = {expected} for x of shape "
                f"{tuple(x.shape)} (P = {self.n_params} raw parameters per entry on axis 1); got {tuple(params.shape)}."
            )

    def forward(self, x, params):
        raise NotImplementedError

    def inverse(self, y, params):
        raise NotImplementedError

    def backward(self, dy, dlogdet):
        raise NotImplementedError

    def inverse_backward(self, dx, dlogdet):
        raise NotImplementedError
