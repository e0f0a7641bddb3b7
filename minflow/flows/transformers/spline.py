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
MIN_BIN_HEIGHT = 1e-3  # m_h
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


def _softmax(u):
    """softmax over axis 1."""
    xp = get_array_module(u)
    e = xp.exp(u - _reduce_bins(xp.maximum, u))
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


def _flat_index(k, n_knots):
    """Flat indices (N, *S) of the entries [n, k[n, ...], ...] of a C-ordered (N, K+1, *S) array.

    Entry k + 1 of the same (n, ...) is M = prod(S) further on, so one index
    array serves both ends of every bin, for gathers and for their gradient.
    """
    xp = get_array_module(k)
    n, m = k.shape[0], k[0].size
    rows = xp.arange(n)[:, None] * (n_knots * m)  # (N, 1): start of sample n
    cols = xp.arange(m)[None, :]  # (1, M): entry within S
    return (rows + k.reshape(n, m) * m + cols).reshape(k.shape)  # (N, *S)


def _gather(knots, index):
    """knots[n, k, ...] and knots[n, k + 1, ...], (N, *S) each, at the flat ``index`` of k."""
    flat, m = knots.reshape(-1), index[0].size
    return flat[index], flat[index + m]


def _scatter(index, lo, hi, n_knots):
    """(N, K+1, *S) holding lo at k and hi at k + 1 of axis 1 (the gathers' gradient); zero elsewhere."""
    xp = get_array_module(lo)
    out = xp.zeros(lo.size * n_knots, dtype=lo.dtype)
    out[index] = lo
    out[index + lo[0].size] = hi  # k + 1 != k: no entry is written twice
    return out.reshape((lo.shape[0], n_knots, *lo.shape[1:]))


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
        """x-knots, y-knots, slopes (N, K+1, *S each) and what their backward needs."""
        xp = get_array_module(params)
        k, b = self.n_bins, self.bound
        xk, pw = _knots(params[:, :k], b, MIN_BIN_WIDTH)
        yk, ph = _knots(params[:, k : 2 * k], b, MIN_BIN_HEIGHT)
        ud = params[:, 2 * k :] + _DERIVATIVE_SHIFT  # (N, K-1, *S)
        d = xp.ones_like(xk)  # boundary slopes d_0 = d_K = 1 match the identity tails
        d[:, 1:k] = MIN_DERIVATIVE + softplus(ud)
        return xk, yk, d, (pw, ph, sigmoid(ud))

    def _spline_backward(self, dxk, dyk, dd, cache):
        """dL/dparams (N, 3K - 1, *S) from the gradients of the knots and slopes."""
        xp = get_array_module(dxk)
        pw, ph, sig = cache
        k, b = self.n_bins, self.bound
        return xp.concatenate(
            [
                _knots_backward(dxk, pw, b, MIN_BIN_WIDTH),
                _knots_backward(dyk, ph, b, MIN_BIN_HEIGHT),
                dd[:, 1:k] * sig,  # softplus' = sigmoid
            ],
            axis=1,
        )

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
    def _rq_backward(gy, gl, saved):
        """Reverse mode through ``_rq``: gradients of x, x_lo, x_hi, y_lo, y_hi, d0, d1 given dL/dy, dL/dlogdet."""
        w, h, s, xi, th, a, den, q, d0, d1 = saved
        # y = y_lo + h a / den;  logdet = 2 log s + log q - 2 log den
        g_ylo = gy
        g_h = gy * a / den
        g_a = gy * h / den
        g_den = -gy * h * a / (den * den) - 2 * gl / den
        g_s = 2 * gl / s
        g_q = gl / q
        # q = d1 xi^2 + 2 s th + d0 (1 - xi)^2
        g_d1 = g_q * xi * xi
        g_d0 = g_q * (1 - xi) ** 2
        g_s = g_s + g_q * 2 * th
        g_th = g_q * 2 * s
        g_xi = g_q * (2 * d1 * xi - 2 * d0 * (1 - xi))
        # den = s + (d1 + d0 - 2 s) th
        g_s = g_s + g_den * (1 - 2 * th)
        g_d1 = g_d1 + g_den * th
        g_d0 = g_d0 + g_den * th
        g_th = g_th + g_den * (d1 + d0 - 2 * s)
        # a = s xi^2 + d0 th
        g_s = g_s + g_a * xi * xi
        g_xi = g_xi + g_a * 2 * s * xi
        g_d0 = g_d0 + g_a * th
        g_th = g_th + g_a * d0
        # th = xi - xi^2
        g_xi = g_xi + g_th * (1 - 2 * xi)
        # xi = (x - x_lo) / w;  s = h / w
        g_x = g_xi / w
        g_w = -(g_xi * xi + g_s * s) / w
        g_h = g_h + g_s / w
        # w = x_hi - x_lo;  h = y_hi - y_lo
        return g_x, -g_x - g_w, g_w, g_ylo - g_h, g_h, g_d0, g_d1

    def _bin(self, knots, v):
        """Bin index k (N, *S) of v among the knots, as the flat index of knot k (see ``_flat_index``).

        k counts the inner knots at or below v, one comparison per knot.
        """
        xp = get_array_module(v)
        k = xp.zeros(v.shape, dtype=xp.intp)
        for j in range(1, self.n_bins):
            k += v >= knots[:, j]
        return _flat_index(k, knots.shape[1])

    def _at(self, knots_x, knots_y, d, index):
        """x_lo, x_hi, y_lo, y_hi, d0, d1 (N, *S each): both ends of each entry's bin."""
        return (*_gather(knots_x, index), *_gather(knots_y, index), *_gather(d, index))

    # -- the four passes ------------------------------------------------------------------

    def forward(self, x, params):
        self.check_params(x, params)
        xp = get_array_module(x)
        xk, yk, d, spline_cache = self._spline(params)
        inside = (x >= -self.bound) & (x <= self.bound)
        x_in = xp.clip(x, -self.bound, self.bound)  # the tails are the identity; keep the formula finite there
        index = self._bin(xk, x_in)
        y_in, logdet, saved = self._rq(x_in, *self._at(xk, yk, d, index))
        self._save_cache("forward", (inside, index, saved, spline_cache, xk.shape[1]))
        return xp.where(inside, y_in, x), xp.where(inside, logdet, 0)

    def inverse(self, y, params):
        self.check_params(y, params)
        xp = get_array_module(y)
        xk, yk, d, spline_cache = self._spline(params)
        inside = (y >= -self.bound) & (y <= self.bound)
        y_in = xp.clip(y, -self.bound, self.bound)
        index = self._bin(yk, y_in)
        x_lo, x_hi, y_lo, y_hi, d0, d1 = self._at(xk, yk, d, index)
        w, h = x_hi - x_lo, y_hi - y_lo
        s = h / w
        dy = y_in - y_lo
        big_d = d0 + d1 - 2 * s
        a = h * (s - d0) + dy * big_d
        b = h * d0 - dy * big_d
        c = -s * dy
        disc = xp.maximum(b * b - 4 * a * c, 0)  # >= 0 in exact arithmetic (monotone bin)
        xi = xp.clip(2 * c / (-b - xp.sqrt(disc)), 0, 1)  # the stable root, in [0, 1]
        x_in = x_lo + xi * w
        # the forward formula at x_in gives log dy/dx and the quantities the backward needs
        _, logdet, saved = self._rq(x_in, x_lo, x_hi, y_lo, y_hi, d0, d1)
        self._save_cache("inverse", (inside, index, saved, spline_cache, xk.shape[1]))
        return xp.where(inside, x_in, y), xp.where(inside, -logdet, 0)

    @staticmethod
    def _inside_only(inside, dout, dlogdet):
        """The upstreams of the spline part: out = where(inside, spline, identity), logdet = where(inside, ., 0)."""
        xp = get_array_module(dout)
        zero = xp.zeros((), dtype=dout.dtype)
        return xp.where(inside, dout, zero), xp.where(inside, xp.broadcast_to(dlogdet, dout.shape), zero)

    def backward(self, dy, dlogdet):
        inside, index, saved, spline_cache, n_knots = self._take_cache("forward", "backward")
        gy, gl = self._inside_only(inside, dy, dlogdet)
        g_x, *g_bin = self._rq_backward(gy, gl, saved)
        dx = get_array_module(dy).where(inside, g_x, dy)  # the tails: dx = dy
        return dx, self._params_grad(index, g_bin, spline_cache, n_knots)

    def inverse_backward(self, dx, dlogdet):
        inside, index, saved, spline_cache, n_knots = self._take_cache("inverse", "inverse_backward")
        xp = get_array_module(dx)
        gx, gl = self._inside_only(inside, dx, dlogdet)
        # x = f^-1(y; theta) and logdet = -G(x; theta), G = log f_x. With f_x = exp(G) at x:
        #   the upstream on x is gbar = gx - gl G_x (x moves G too);
        #   dL/dy = gbar / f_x;  dL/dtheta = -(gbar / f_x) f_theta - gl G_theta.
        s, den, q = saved[2], saved[6], saved[7]  # see _rq
        f_x = s * s * q / (den * den)  # dy/dx at x
        g_logx, *_ = self._rq_backward(xp.zeros_like(gx), xp.ones_like(gx), saved)  # G_x
        gbar = gx - gl * g_logx
        dy_in = gbar / f_x
        _, *g_bin = self._rq_backward(-dy_in, -gl, saved)  # (-gbar / f_x) f_theta + (-gl) G_theta
        dy = xp.where(inside, dy_in, dx)
        return dy, self._params_grad(index, g_bin, spline_cache, n_knots)

    def _params_grad(self, index, g_bin, spline_cache, n_knots):
        """dL/dparams from the gradients of the six bin quantities (zero for entries in the tails)."""
        g_xlo, g_xhi, g_ylo, g_yhi, g_d0, g_d1 = g_bin
        dxk = _scatter(index, g_xlo, g_xhi, n_knots)
        dyk = _scatter(index, g_ylo, g_yhi, n_knots)
        dd = _scatter(index, g_d0, g_d1, n_knots)
        return self._spline_backward(dxk, dyk, dd, spline_cache)
