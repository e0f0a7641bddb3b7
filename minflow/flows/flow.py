"""Flow: a composition of bijections, itself a bijection.

Direction: forward maps data x to latent z through layers 0, 1, ..., L-1;
inverse maps z back to x through layers L-1, ..., 0.

The log-det of a composition is the sum of its layers' log-dets (chain rule:
det(AB) = det(A) det(B)), so in the backward pass every layer receives the
same dlogdet.

Memory by inversion (``recompute="invert"``): the layers are invertible, so
the backward pass can rebuild each layer's input from its output instead of
keeping every layer's activations from the forward pass. Activation memory
then stays that of one layer, whatever the depth, for the price of one more
inverse and forward pass per layer (Gomez et al. 2017, "The Reversible
Residual Network", arXiv:1707.04585, use the same idea).
"""

from .base import Bijection

__all__ = ["Flow"]


class Flow(Bijection):
    """A sequence of bijections applied in order (data -> latent).

    Args:
        layers: a list of Bijection instances.
        recompute: None (each layer keeps its forward cache) or "invert"
            (keep only the output; rebuild each layer's input by its inverse
            during the backward pass, then redo that layer's pass to get its
            cache back). Gradients agree with the cached path up to rounding.

    Shapes:
        x: whatever the first layer takes, e.g. (N, D) or (N, C, H, W).
        z: whatever the last layer gives. logdet: (N,).

    Caches:
        None: nothing of its own; each layer keeps what its own backward needs.
        "invert": only the output of the last pass (z for forward, x for
        inverse); every layer's cache is released as soon as it is made.
    """

    RECOMPUTE = (None, "invert")

    def __init__(self, layers, recompute=None):
        super().__init__()
        if recompute not in self.RECOMPUTE:
            raise ValueError(f"recompute must be one of {self.RECOMPUTE}; got {recompute!r}.")
        self.recompute = recompute
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Bijection):
                raise TypeError(
                    f"Flow expects Bijection layers; layer {i} is {type(layer).__name__}. "
                    "Wrap building blocks (nn.*) inside a coupling layer instead."
                )
            self.add_child(str(i), layer)
        self.layers = layers

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def forward(self, x):
        logdet = 0.0
        for layer in self.layers:
            x, layer_logdet = layer.forward(x)
            logdet = logdet + layer_logdet  # log|det| of a product is a sum
            if self.recompute:
                layer.release_caches()
        if self.recompute:
            self._save_cache("forward", x)
        return x, logdet

    def inverse(self, z):
        logdet = 0.0
        for layer in reversed(self.layers):
            z, layer_logdet = layer.inverse(z)
            logdet = logdet + layer_logdet
            if self.recompute:
                layer.release_caches()
        if self.recompute:
            self._save_cache("inverse", z)
        return z, logdet

    def backward(self, dz, dlogdet):
        # forward was: x -> layer 0 -> ... -> layer L-1 -> z; undo from the top.
        if self.recompute:
            out = self._take_cache("forward", "backward")
        for layer in reversed(self.layers):
            if self.recompute:
                inp = layer.inverse(out)[0]  # rebuild this layer's input from its output
                layer.release_caches()
                layer.forward(inp)  # redo its forward: its cache is back, for one layer only
                out = inp
            dz = layer.backward(dz, dlogdet)
        return dz

    def inverse_backward(self, dx, dlogdet):
        # inverse was: z -> layer L-1 -> ... -> layer 0 -> x; undo from the bottom.
        if self.recompute:
            out = self._take_cache("inverse", "inverse_backward")
        for layer in self.layers:
            if self.recompute:
                inp = layer.forward(out)[0]  # rebuild this layer's input (in z-space)
                layer.release_caches()
                layer.inverse(inp)
                out = inp
            dx = layer.inverse_backward(dx, dlogdet)
        return dx

    def forward_steps(self, x):
        """All intermediate values [x, h1, ..., z] of the forward pass (for plots)."""
        steps = [x]
        for layer in self.layers:
            x, _ = layer.forward(x)
            steps.append(x)
        return steps

    def inverse_steps(self, z):
        """All intermediate values [z, ..., x] of the inverse pass (for plots)."""
        steps = [z]
        for layer in reversed(self.layers):
            z, _ = layer.inverse(z)
            steps.append(z)
        return steps
