"""Monotone rational-quadratic spline transformer (neural spline flows; Durkan, Bekasov, Murray & Papamakarios 2019, arXiv:1906.04032).

Direction: forward maps data x to latent y. On [-B, B] the map is a
monotone spline of K rational-quadratic bins; outside it is the identity
(linear tails), and the spline meets the tails with value and slope 1.

Raw parameters per entry, 3K - 1 of them on axis 1 of params:

    params[:, 0:K]       width logits uw    widths  w_i = 2B (m_w + (1 - K m_w) softmax(uw)_i)
    params[:, K:2K]      height logits uh   heights h_i = 2B (m_h + (1 - K m_h) softmax(uh)_i)
    params[:, 2K:3K-1]   derivative raws ud inner slopes d_1..d_{K-1} = m_d + softplus(ud + c)

with m_w = m_h = m_d = 1e-3 (no bin narrower or flatter than that) and
c = log(exp(1 - m_d) - 1), so that all-zero raw parameters (a zero-initialised
conditioner) give equal bins and unit slopes: the identity. The boundary
slopes are d_0 = d_K = 1. Knots: x_0 = -B, x_k = x_0 + w_1 + ... + w_k, x_K = B;
the same for y.

In bin k (x_k <= x <= x_{k+1}), with w, h its width and height, s = h / w,
xi = (x - x_k) / w and th = xi (1 - xi) (equation 4 of the paper):

    y = y_k + h (s xi^2 + d_k th) / (s + (d_k + d_{k+1} - 2 s) th)
    log dy/dx = 2 log s + log(d_{k+1} xi^2 + 2 s th + d_k (1 - xi)^2) - 2 log(s + (d_k + d_{k+1} - 2 s) th)

Inverse, in the bin of y among the y-knots: xi solves a xi^2 + b xi + c = 0 with
    a = h (s - d_k) + (y - y_k) D,   b = h d_k - (y - y_k) D,   c = -s (y - y_k),
    D = d_k + d_{k+1} - 2 s,
and the root in [0, 1] is taken in the form that does not cancel (b < 0 < -c
when y is inside the bin): xi = 2c / (-b - sqrt(b^2 - 4ac)); x = x_k + xi w.
"""

import math

from ...backend import get_array_module, sigmoid, softplus
from .base import Transformer

__all__ = ["MIN_BIN_HEIGHT", "MIN_BIN_WIDTH", "MIN_DERIVATIVE", "RationalQuadraticSpline"]

MIN_BIN_WIDTH = 1e-3  # m_w: fraction of 2B
MIN_BIN_HEIGHT = MIN_BIN_WIDTH  # m_h = m_w: widths and heights share one softmax pass (``_spline``)
MIN_DERIVATIVE = 1e-3  # m_d
_DERIVATIVE_SHIFT = math.log(math.expm1(1 - MIN_DERIVATIVE))  # c: softplus(0 + c) + m_d = 1


def _reduce_bins(ufunc, u):
    """ufunc.reduce over axis 1, keeping it: u[:, 0] op u[:, 1] op ... op u[:, K-1], shape (N, 1, *S).

    K - 1 elementwise calls on (N, 1, *S) slices, in the order of numpy's own
    reduction along a middle axis (so the same numbers). With a few bins and
    S = (2,), that reduction runs a two-entry inner loop per (n, k) and costs
    about 3x these calls (2D IAF step, measured on this machine).
    """
    out = u[:, :1].copy()  # (N, 1, *S)
    for i in range(1, u.shape[1]):
        ufunc(out, u[:, i : i + 1], out=out)
    return out


def _max_bins(u):
    """max over axis 1, keeping it (N, 1, *S): the two halves compared until one bin is left (about log2 K calls).

    A maximum is exact in any order, so this is numpy's ``u.max(axis=1, keepdims=True)`` to the bit.
    """
    xp = get_array_module(u)
    while u.shape[1] > 1:
        half = u.shape[1] // 2
        top = xp.maximum(u[:, :half], u[:, half : 2 * half])  # (N, half, *S)
        if u.shape[1] % 2:
            top[:, :1] = xp.maximum(top[:, :1], u[:, -1:])  # the odd bin out
        u = top
    return u


def _softmax(u):
    """softmax over axis 1."""
    xp = get_array_module(u)
    e = xp.exp(u - _max_bins(u))
    return e / _reduce_bins(xp.add, e)


def _knots(u, bound, minimum):
    """Knots (N, K+1, *S) from logits u (N, K, *S): -B, then cumulative widths, then B; and the softmax."""
    xp = get_array_module(u)
    n_bins = u.shape[1]
    p = _softmax(u)
    frac = minimum + (1 - n_bins * minimum) * p  # (N, K, *S), sums to 1
    knots = xp.empty((u.shape[0], n_bins + 1, *u.shape[2:]), dtype=u.dtype)
    knots[:, 0] = -bound
    knots[:, 1:] = -bound + 2 * bound * xp.cumsum(frac, axis=1)
    knots[:, -1] = bound  # exactly, whatever the rounding of the sum
    return knots, p


def _knots_backward(dknots, p, bound, minimum):
    """dL/du from dL/dknots: only the inner knots x_1..x_{K-1} move with u."""
    xp = get_array_module(dknots)
    n_bins = p.shape[1]
    # knot j (1 <= j <= K-1) = -B + 2B sum_{i < j} frac_i  =>  dfrac_i = 2B sum_{j > i, j <= K-1} dknot_j
    inner = 2 * bound * dknots[:, 1:n_bins]  # (N, K-1, *S)
    dfrac = xp.zeros_like(p)
    dfrac[:, : n_bins - 1] = xp.cumsum(inner[:, ::-1], axis=1)[:, ::-1]  # sums from the last knot down
    dp = (1 - n_bins * minimum) * dfrac
    return p * (dp - _reduce_bins(xp.add, p * dp))  # softmax: dp_i p_i - p_i sum_j p_j dp_j


def _flat_index(k, row_size):
    """Flat indices (N, *S) of the entries [n, k[n, ...], ...] of a C-ordered (N, ..., K+1, *S) table.

    ``row_size`` is the size of one sample's slice of the table. Knot k + 1 of
    the same (n, ...) is M = prod(S) further on, and the same knot of the next
    row of the table (N, 3, K+1, *S) is (K+1) M further on, so one index array
    serves all six gathers of a bin and their gradient.
    """
    xp = get_array_module(k)
    n, m = k.shape[0], k[0].size
    rows = xp.arange(n)[:, None] * row_size  # (N, 1): start of sample n
    cols = xp.arange(m)[None, :]  # (1, M): entry within S
    return (rows + k.reshape(n, m) * m + cols).reshape(k.shape)  # (N, *S)


def _offsets(table):
    """Flat offsets of (x_lo, x_hi, y_lo, y_hi, d_k, d_k+1) from knot k's x entry in a (N, 3, K+1, *S) table."""
    m = table[0, 0, 0].size  # M
    row = table[0, 0].size  # (K+1) M
    return tuple(r * row + end * m for r in range(3) for end in (0, 1))


def _gather(table, index):
    """x_lo, x_hi, y_lo, y_hi, d0, d1 (N, *S each) at the flat ``index`` of each entry's bin k."""
    flat = table.reshape(-1)
    return tuple(flat[index + offset] for offset in _offsets(table))


def _scatter(table_shape, index, grads):
    """The gathers' gradient: a zero table holding the six bin gradients at their entries."""
    xp = get_array_module(index)
    out = xp.zeros(table_shape, dtype=grads[0].dtype)
    flat = out.reshape(-1)
    for offset, g in zip(_offsets(out), grads):
        flat[index + offset] = g  # six distinct entries per (n, ...): none is written twice
    return out


class RationalQuadraticSpline(Transformer):
    """Monotone rational-quadratic spline on [-B, B] with identity tails; 3K - 1 raw parameters per entry.

    Args:
        n_bins: K (8 by default, as in the paper's toy experiments).
        bound: B, the half-width of the interval the spline covers (identity outside).

    Shapes:
        x, y, logdet: (N, *S); params: (N, 3K - 1, *S) (see the module docstring).

    Caches:
        each direction keeps what its backward needs: whether each entry is
        inside [-B, B], the flat index of its bin (``_flat_index``), the bin
        formula's intermediate values at the point (width, height, slope s,
        xi, ...; ten (N, *S) arrays, so the backward repeats no bin search or
        gather) and the softmaxes and sigmoids of the raw parameters (N, K, *S) for their gradients.

    Note:
        Gradients, derived step by step in ``_rq_backward`` and
        ``inverse_backward``: in the forward direction by reverse-mode through
        the bin formula; in the inverse direction by the implicit function
        theorem, x = f^-1(y; theta) => dx = (dy - f_theta dtheta) / f_x, and
        logdet_inverse = -log f_x(x; theta).

    Reference:
        Durkan et al. (2019), "Neural Spline Flows", section 3.1 and appendix A.
    """

    def __init__(self, n_bins=8, bound=3.0):
        super().__init__()
        if int(n_bins) != n_bins or n_bins < 2:
            raise ValueError(f"RationalQuadraticSpline needs n_bins >= 2 (an integer); got {n_bins!r}.")
        if not bound > 0:
            raise ValueError(f"RationalQuadraticSpline bound B must be positive; got {bound!r}.")
        self.n_bins, self.bound = int(n_bins), float(bound)
        self.n_params = 3 * self.n_bins - 1

    # -- raw parameters -> knots and slopes ---------------------------------------

    def _spline(self, params):
        """The knots and slopes as one table (N, 3, K+1, *S): rows x-knots, y-knots, slopes; and what the backward needs.

        Width and height logits take one softmax-and-cumsum pass together,
        stacked as (2N, K, *S) (m_w = m_h), and the six gathers of a bin read
        the one table through one index (``_flat_index``).
        """
        xp = get_array_module(params)
        k, b = self.n_bins, self.bound
        n, shape = params.shape[0], params.shape[2:]
        logits = params[:, : 2 * k].reshape(2 * n, k, *shape)  # (2N, K, *S): uw of sample 0, uh of sample 0, ...
        knots, p = _knots(logits, b, MIN_BIN_WIDTH)  # (2N, K+1, *S)
        ud = params[:, 2 * k :] + _DERIVATIVE_SHIFT  # (N, K-1, *S)
        table = xp.empty((n, 3, k + 1, *shape), dtype=params.dtype)
        table[:, :2] = knots.reshape(n, 2, k + 1, *shape)
        table[:, 2] = 1  # boundary slopes d_0 = d_K = 1 match the identity tails
        table[:, 2, 1:k] = MIN_DERIVATIVE + softplus(ud)
        return table, (p, sigmoid(ud))

    def _spline_backward(self, dtable, cache):
        """dL/dparams (N, 3K - 1, *S) from the gradient of the table of knots and slopes."""
        xp = get_array_module(dtable)
        p, sig = cache
        k, b = self.n_bins, self.bound
        n, shape = dtable.shape[0], dtable.shape[3:]
        dknots = dtable[:, :2].reshape(2 * n, k + 1, *shape)  # (2N, K+1, *S), as in the forward
        dlogits = _knots_backward(dknots, p, b, MIN_BIN_WIDTH).reshape(n, 2 * k, *shape)
        return xp.concatenate([dlogits, dtable[:, 2, 1:k] * sig], axis=1)  # softplus' = sigmoid

    # -- one bin ------------------------------------------------------------------------

    @staticmethod
    def _rq(x, x_lo, x_hi, y_lo, y_hi, d0, d1):
        """y and log dy/dx in the bin [x_lo, x_hi] -> [y_lo, y_hi] with end slopes d0, d1."""
        xp = get_array_module(x)
        w, h = x_hi - x_lo, y_hi - y_lo
        s = h / w
        xi = (x - x_lo) / w
        th = xi * (1 - xi)
        a = s * xi * xi + d0 * th
        den = s + (d1 + d0 - 2 * s) * th
        q = d1 * xi * xi + 2 * s * th + d0 * (1 - xi) ** 2
        y = y_lo + h * a / den
        logdet = 2 * xp.log(s) + xp.log(q) - 2 * xp.log(den)
        return y, logdet, (w, h, s, xi, th, a, den, q, d0, d1)

    @staticmethod
    def _rq_backward(dy, dlogdet, saved):
        """Reverse mode through ``_rq``: gradients of x, x_lo, x_hi, y_lo, y_hi, d0, d1 given dL/dy, dL/dlogdet."""
        w, h, s, xi, th, a, den, q, d0, d1 = saved
        # y = y_lo + h a / den;  logdet = 2 log s + log q - 2 log den
        dy_lo = dy
        dh = dy * a / den
        da = dy * h / den
        dden = -dy * h * a / (den * den) - 2 * dlogdet / den
        ds = 2 * dlogdet / s
        dq = dlogdet / q
        # q = d1 xi^2 + 2 s th + d0 (1 - xi)^2
        dd1 = dq * xi * xi
        dd0 = dq * (1 - xi) ** 2
        ds = ds + dq * 2 * th
        dth = dq * 2 * s
        dxi = dq * (2 * d1 * xi - 2 * d0 * (1 - xi))
        # den = s + (d1 + d0 - 2 s) th
        ds = ds + dden * (1 - 2 * th)
        dd1 = dd1 + dden * th
        dd0 = dd0 + dden * th
        dth = dth + dden * (d1 + d0 - 2 * s)
        # a = s xi^2 + d0 th
        ds = ds + da * xi * xi
        dxi = dxi + da * 2 * s * xi
        dd0 = dd0 + da * th
        dth = dth + da * d0
        # th = xi - xi^2
        dxi = dxi + dth * (1 - 2 * xi)
        # xi = (x - x_lo) / w;  s = h / w
        dx = dxi / w
        dw = -(dxi * xi + ds * s) / w
        dh = dh + ds / w
        # w = x_hi - x_lo;  h = y_hi - y_lo
        return dx, -dx - dw, dw, dy_lo - dh, dh, dd0, dd1

    def _bin(self, table, row, v):
        """Bin index k (N, *S) of v among the knots of ``table[:, row]`` (0: x, 1: y), as a flat index (``_flat_index``).

        k counts the inner knots at or below v, one comparison per knot.
        """
        xp = get_array_module(v)
        k = xp.zeros(v.shape, dtype=xp.intp)
        for j in range(1, self.n_bins):
            k += v >= table[:, row, j]
        return _flat_index(k, table[0].size)

    # -- the four passes ------------------------------------------------------------------

    def forward(self, x, params):
        self.check_params(x, params)
        xp = get_array_module(x)
        table, spline_cache = self._spline(params)
        inside = (x >= -self.bound) & (x <= self.bound)
        x_in = xp.clip(x, -self.bound, self.bound)  # the tails are the identity; keep the formula finite there
        index = self._bin(table, 0, x_in)
        y_in, logdet, saved = self._rq(x_in, *_gather(table, index))
        self._save_cache("forward", (inside, index, saved, spline_cache, table.shape))
        return xp.where(inside, y_in, x), xp.where(inside, logdet, 0)

    def inverse(self, y, params):
        self.check_params(y, params)
        xp = get_array_module(y)
        table, spline_cache = self._spline(params)
        inside = (y >= -self.bound) & (y <= self.bound)
        y_in = xp.clip(y, -self.bound, self.bound)
        index = self._bin(table, 1, y_in)
        x_lo, x_hi, y_lo, y_hi, d0, d1 = _gather(table, index)
        w, h = x_hi - x_lo, y_hi - y_lo
        s = h / w
        y_off = y_in - y_lo
        big_d = d0 + d1 - 2 * s
        a = h * (s - d0) + y_off * big_d
        b = h * d0 - y_off * big_d
        c = -s * y_off
        disc = xp.maximum(b * b - 4 * a * c, 0)  # >= 0 in exact arithmetic (monotone bin)
        xi = xp.clip(2 * c / (-b - xp.sqrt(disc)), 0, 1)  # the stable root, in [0, 1]
        x_in = x_lo + xi * w
        # the forward formula at x_in gives log dy/dx and the quantities the backward needs
        _, logdet, saved = self._rq(x_in, x_lo, x_hi, y_lo, y_hi, d0, d1)
        self._save_cache("inverse", (inside, index, saved, spline_cache, table.shape))
        return xp.where(inside, x_in, y), xp.where(inside, -logdet, 0)

    @staticmethod
    def _inside_only(inside, dout, dlogdet):
        """The upstreams of the spline part: out = where(inside, spline, identity), logdet = where(inside, ., 0)."""
        xp = get_array_module(dout)
        zero = xp.zeros((), dtype=dout.dtype)
        return xp.where(inside, dout, zero), xp.where(inside, xp.broadcast_to(dlogdet, dout.shape), zero)

    def backward(self, dy, dlogdet):
        inside, index, saved, spline_cache, table_shape = self._take_cache("forward", "backward")
        dy_in, dlogdet_in = self._inside_only(inside, dy, dlogdet)
        dx_in, *dbin = self._rq_backward(dy_in, dlogdet_in, saved)
        dx = get_array_module(dy).where(inside, dx_in, dy)  # the tails: dx = dy
        return dx, self._spline_backward(_scatter(table_shape, index, dbin), spline_cache)

    def inverse_backward(self, dx, dlogdet):
        inside, index, saved, spline_cache, table_shape = self._take_cache("inverse", "inverse_backward")
        xp = get_array_module(dx)
        dx_in, dlogdet_in = self._inside_only(inside, dx, dlogdet)
        # x = f^-1(y; theta) and logdet = -G(x; theta), G = log f_x. With f_x = exp(G) at x:
        #   the upstream on x is dx_bar = dx_in - dlogdet_in G_x (x moves G too);
        #   dL/dy = dx_bar / f_x;  dL/dtheta = -(dx_bar / f_x) f_theta - dlogdet_in G_theta.
        s, den, q = saved[2], saved[6], saved[7]  # see _rq
        f_x = s * s * q / (den * den)  # dy/dx at x
        G_x, *_ = self._rq_backward(xp.zeros_like(dx_in), xp.ones_like(dx_in), saved)  # dG/dx
        dx_bar = dx_in - dlogdet_in * G_x
        dy_in = dx_bar / f_x
        _, *dbin = self._rq_backward(-dy_in, -dlogdet_in, saved)  # (-dx_bar / f_x) f_theta + (-dlogdet_in) G_theta
        dy = xp.where(inside, dy_in, dx)
        return dy, self._spline_backward(_scatter(table_shape, index, dbin), spline_cache)
