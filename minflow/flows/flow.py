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
Residual Network", arXiv:1707.04585, use the same idea). Each layer rebuilds
its own input (``Bijection.rebuild_input`` / ``rebuild_pass``): the exact
inverse of the pass that was taken, with no side effect, so the gradients
are the cached path's in both directions, whatever state a layer keeps.
"""

from .base import Bijection, _check_direction, check_recompute

__all__ = ["Flow"]


class Flow(Bijection):
    """A sequence of bijections applied in order (data -> latent).

    Args:
        layers: a list of Bijection instances (parameter names "0.<key>",
            "1.<key>", ...), or a dict name -> Bijection in forward order
            (parameter names "<name>.<key>").
        recompute: None (each layer keeps its forward cache) or "invert"
            (keep only the output; rebuild each layer's input from its output
            during the backward pass, and redo that layer's pass to get its
            cache back). Gradients agree with the cached path up to rounding,
            in both directions. A layer that cannot rebuild its input (see
            ``Bijection.recompute_error``) makes "invert" a ValueError that
            names it and says why.

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
        named = layers.items() if isinstance(layers, dict) else ((str(i), layer) for i, layer in enumerate(layers))
        self.layers = []
        for name, layer in named:
            if not isinstance(layer, Bijection):
                raise TypeError(
                    f"Flow expects Bijection layers; layer {name} is {type(layer).__name__}. "
                    "Wrap building blocks (nn.*) inside a coupling layer instead."
                )
            self.layers.append(self.add_child(name, layer))
        self.recompute = recompute

    @property
    def recompute(self):
        """None or "invert" (see the class docstring); setting "invert" checks every layer can rebuild its input."""
        return self._recompute

    @recompute.setter
    def recompute(self, recompute):
        if recompute not in self.RECOMPUTE:
            raise ValueError(f"recompute must be one of {self.RECOMPUTE}; got {recompute!r}.")
        if recompute is not None:
            check_recompute(self, f"{type(self).__name__}(recompute={recompute!r})")
        self._recompute = recompute

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
                out = layer.rebuild_pass(out, "forward")  # this layer's input; its forward cache is back
            dz = layer.backward(dz, dlogdet)
        return dz

    def inverse_backward(self, dx, dlogdet):
        # inverse was: z -> layer L-1 -> ... -> layer 0 -> x; undo from the bottom.
        if self.recompute:
            out = self._take_cache("inverse", "inverse_backward")
        for layer in self.layers:
            if self.recompute:
                out = layer.rebuild_pass(out, "inverse")  # this layer's input (in z-space); its inverse cache is back
            dx = layer.inverse_backward(dx, dlogdet)
        return dx

    # -- memory by inversion, for a Flow inside another -------------------------

    def _undo_order(self, direction):
        """The layers from the last one a ``direction`` pass ran to the first."""
        return reversed(self.layers) if direction == "forward" else iter(self.layers)

    def recompute_error(self, direction):
        """None: its layers answer for themselves."""
        _check_direction(direction)

    def rebuild_input(self, out, direction):
        _check_direction(direction)
        for layer in self._undo_order(direction):
            out = layer.rebuild_input(out, direction)
        return out

    def rebuild_pass(self, out, direction):
        _check_direction(direction)
        if self.recompute:  # this flow's cache is its output; its backward rebuilds the layers again
            inp = self.rebuild_input(out, direction)
            self._save_cache(direction, out)
            return inp
        for layer in self._undo_order(direction):
            out = layer.rebuild_pass(out, direction)  # every layer's cache is back, as after the pass
        return out

    # -- intermediate values, for plots --------------------------------------------

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
