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
name, so a round trip does not overwrite the other direction's cache. A
backward reads its cache and the parameters, and changes nothing but the
gradients: no parameter, buffer or other state.

Memory by inversion (``Flow(recompute="invert")``) adds two methods, given
the output ``out`` of the layer's last pass in ``direction`` ("forward" or
"inverse"):

    inp = layer.rebuild_input(out, direction)  # that pass's input; no cache, no side effect
    inp = layer.rebuild_pass(out, direction)   # the same, and that pass's cache is back

The rebuild must be the exact inverse of the pass that was taken, with the
parameters and statistics that pass used, and must change nothing: no
data-dependent initialisation, no running-statistics update. For a
*stateless* layer, whose passes read and write nothing but the parameters,
their input and their own caches, the opposite pass is that inverse, and
the defaults below use it; such a layer says so with ``stateless = True``.
A layer with state (``ActNorm``, ``BatchNorm``) overrides the two methods
and ``recompute_error``; a layer that does neither is refused by
``Flow(recompute="invert")`` with the reason ``recompute_error`` gives,
never run with a wrong gradient.
"""

from ..nn.module import Module

__all__ = [
    "DIRECTIONS",
    "Bijection",
    "Inverse",
    "RecomputeError",
    "SamplingMapBijection",
    "check_recompute",
    "recompute_problem",
]

DIRECTIONS = ("forward", "inverse")


class RecomputeError(ValueError):
    """Memory by inversion cannot rebuild a layer's input: the layer is named, with the reason."""


def _check_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}.")


def _opposite(direction):
    return "inverse" if direction == "forward" else "forward"


class Bijection(Module):
    """Base class of invertible layers; see the module docstring for the contract.

    Subclasses implement ``forward``, ``inverse``, ``backward`` and
    ``inverse_backward``. A layer whose inverse is numerical says so in a
    ``Note:`` of its docstring.

    Attributes:
        stateless: True for a layer whose passes read and write nothing but
            the parameters, their input and their own caches (and those of
            its non-Bijection children, a conditioner network): memory by
            inversion may then rebuild its input by its opposite pass. False
            by default, so a layer with hidden state is refused rather than
            rebuilt wrongly.
    """

    stateless = False

    def forward(self, x):
        raise NotImplementedError

    def inverse(self, z):
        raise NotImplementedError

    def backward(self, dz, dlogdet):
        raise NotImplementedError

    def inverse_backward(self, dx, dlogdet):
        raise NotImplementedError

    # -- memory by inversion ---------------------------------------------------

    def recompute_error(self, direction):
        """None where ``rebuild_input`` is exact after a ``direction`` pass; else a sentence saying why not.

        This layer's own answer: a composite (``Flow``, ``FactorOut``,
        ``Inverse``) returns None, and ``recompute_problem`` asks its children.
        """
        _check_direction(direction)
        if self.stateless:
            return None
        return (
            "it does not declare its passes stateless (the class attribute stateless = True, for passes that "
            "read and write nothing but the parameters, their input and their caches), and does not rebuild "
            "its input itself (rebuild_input, rebuild_pass and recompute_error, as ActNorm and BatchNorm do)"
        )

    def rebuild_input(self, out, direction):
        """The input of this layer's last ``direction`` pass, computed from that pass's output ``out``.

        Exact (the inverse of the pass that was taken, to rounding) and free
        of side effects: the layer keeps no cache afterwards, and no
        parameter, buffer or other state changes. The default runs the
        opposite pass, which is that inverse for a stateless layer.
        """
        _check_direction(direction)
        reason = self.recompute_error(direction)
        if reason:
            raise RecomputeError(
                f"{type(self).__name__} cannot rebuild its input after its {direction} pass: {reason}."
            )
        inp = (self.inverse if direction == "forward" else self.forward)(out)[0]
        self.release_caches()  # the opposite pass's cache, here and in the conditioner
        return inp

    def rebuild_pass(self, out, direction):
        """``rebuild_input(out, direction)``, then that pass redone on it so its backward's cache is back.

        Returns the input. The default redoes the pass, which for a stateless
        layer changes nothing but its caches.
        """
        inp = self.rebuild_input(out, direction)
        (self.forward if direction == "forward" else self.inverse)(inp)
        return inp


class SamplingMapBijection(Bijection):
    """A layer written as its sampling map x = G(z) (planar, radial): ``inverse`` is G in closed form.

    The subclass's ``inverse`` caches a tuple ``cache`` and implements
    ``_sampling_vjp(*cache, dx, dlogdet) -> (dz, grads)``: dL/dz and dL/dtheta
    (a dict over the parameters) through x = G(z) and logdet = log|det dG/dz|.
    ``inverse_backward`` is that vjp; the subclass's ``backward`` (after a
    numerical ``forward``) reuses it with -dx and -dlogdet for the parameters.
    """

    def inverse_backward(self, dx, dlogdet):
        cache = self._take_cache("inverse", "inverse_backward")
        dz, grads = self._sampling_vjp(*cache, dx, dlogdet)
        self._add_grads(grads)
        return dz


def recompute_problem(module):
    """The first layer inside ``module`` whose input memory by inversion cannot rebuild, or None.

    Returns (path, layer, direction, reason): ``path`` the layer's dotted
    name inside ``module`` ("" for ``module`` itself), ``direction`` the
    pass after which it cannot, ``reason`` its ``recompute_error``.
    """
    for path, layer in module.named_modules():
        if isinstance(layer, Bijection):
            for direction in DIRECTIONS:
                reason = layer.recompute_error(direction)
                if reason:
                    return path, layer, direction, reason
    return None


def check_recompute(module, owner):
    """Raise a RecomputeError naming the layer and why, if memory by inversion cannot run on ``module``.

    Args:
        module: a Flow, FlowModel or any Module holding Bijections.
        owner: what asked, for the message (e.g. "FlowModel.set_recompute('invert')").
    """
    problem = recompute_problem(module)
    if problem is not None:
        path, layer, direction, reason = problem
        raise RecomputeError(
            f"{owner}: memory by inversion cannot rebuild the input of layer {path or '(the flow itself)'} "
            f"({type(layer).__name__}) after its {direction} pass: {reason}. "
            "Use recompute=None, or give that layer the methods its reason names."
        )


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

    def recompute_error(self, direction):
        """None: the wrapped layer answers for itself."""
        _check_direction(direction)

    def rebuild_input(self, out, direction):
        return self.layer.rebuild_input(out, _opposite(direction))

    def rebuild_pass(self, out, direction):
        return self.layer.rebuild_pass(out, _opposite(direction))
