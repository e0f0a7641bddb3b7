"""Flow: a composition of bijections, itself a bijection.

Direction: forward maps data x to latent z through layers 0, 1, ..., L-1;
inverse maps z back to x through layers L-1, ..., 0.

The log-det of a composition is the sum of its layers' log-dets (chain rule:
det(AB) = det(A) det(B)), so in the backward pass every layer receives the
same dlogdet.
"""

from .base import Bijection

__all__ = ["Flow"]


class Flow(Bijection):
    """A sequence of bijections applied in order (data -> latent).

    Args:
        layers: a list of Bijection instances.

    Shapes:
        x: whatever the first layer takes, e.g. (N, D) or (N, C, H, W).
        z: whatever the last layer gives. logdet: (N,).

    Caches:
        none of its own; each layer keeps what its own backward needs.
    """

    def __init__(self, layers):
        super().__init__()
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
        return x, logdet

    def inverse(self, z):
        logdet = 0.0
        for layer in reversed(self.layers):
            z, layer_logdet = layer.inverse(z)
            logdet = logdet + layer_logdet
        return z, logdet

    def backward(self, dz, dlogdet):
        # forward was: x -> layer 0 -> ... -> layer L-1 -> z; undo from the top.
        for layer in reversed(self.layers):
            dz = layer.backward(dz, dlogdet)
        return dz

    def inverse_backward(self, dx, dlogdet):
        # inverse was: z -> layer L-1 -> ... -> layer 0 -> x; undo from the bottom.
        for layer in self.layers:
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
