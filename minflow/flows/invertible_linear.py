"""Invertible linear map / invertible 1x1 convolution (Glow; Kingma & Dhariwal 2018, arXiv:1807.03039, section 3.2).

Direction: forward maps data x to latent z.

A learned C x C matrix W mixes the channels (axis 1): the features of a
vector (N, D), or the channels of every pixel of an image (N, C, H, W),
which is a 1x1 convolution. It generalises the fixed permutations that
RealNVP and NICE put between couplings.

    forward:  z[n, :, h, w] = W x[n, :, h, w]
    inverse:  x[n, :, h, w] = W^{-1} z[n, :, h, w]
    log|det dz/dx| = H * W_width * log|det W|        (H * W_width = 1 for vectors)

Two parameterisations of W:
    plain:  W itself; log|det W| by ``slogdet`` in float64, inverse by a solve.
    LU:     W = P L (U + diag(sign_s * exp(log_s)))  with P a fixed permutation,
            L unit lower triangular, U strictly upper triangular, sign_s fixed;
            log|det W| = sum(log_s), O(C) instead of O(C^3).
"""

import math

import numpy
import scipy.linalg

from ..backend import DEFAULT_DTYPE, get_array_module, get_backend, normal, to_device, to_numpy
from ..checks import require_rng
from .base import Bijection
from .shapes import check_channels

__all__ = ["InvertibleLinear", "InvertibleLinearLU", "random_rotation"]


def random_rotation(features, rng):
    """A random rotation (orthogonal, det +1) of size features x features, as a host float64 array.

    The Q factor of the QR decomposition of a Gaussian matrix, with the signs
    of R's diagonal moved into Q (so Q is uniform over orthogonal matrices)
    and one column flipped if needed so that det Q = +1. Glow starts W here:
    log|det W| = 0, and every direction is mixed.
    """
    gauss = to_numpy(normal((features, features), numpy.float64, rng))  # (C, C)
    q, r = numpy.linalg.qr(gauss)
    q = q * numpy.sign(numpy.diag(r))  # Haar measure on orthogonal matrices
    if numpy.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _check_matrix(matrix, cls_name):
    """A host float64 copy of a square, finite, invertible matrix; clear errors otherwise."""
    m = numpy.array(to_numpy(matrix), dtype=numpy.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
        raise ValueError(f"{cls_name}.from_matrix expects a square (C, C) matrix; got shape {m.shape}.")
    if not numpy.isfinite(m).all():
        raise ValueError(f"{cls_name}.from_matrix got a matrix with NaN or infinite entries.")
    sign, _ = numpy.linalg.slogdet(m)
    if sign == 0:
        raise ValueError(f"{cls_name}.from_matrix got a singular matrix (det 0); an invertible layer needs det != 0.")
    return m


def _solve(a, b, layer):
    """a^{-1} b; a FloatingPointError naming the layer if a is singular (not numpy's bare LinAlgError)."""
    try:
        return get_array_module(a).linalg.solve(a, b)
    except numpy.linalg.LinAlgError as err:
        raise FloatingPointError(
            f"{type(layer).__name__}: W is singular ({err}), so it cannot be inverted (log|det W| = -inf). "
            "Lower the learning rate, or use InvertibleLinearLU, which stays invertible."
        ) from err


class _ChannelMixing(Bijection):
    """Shared passes of both parameterisations; subclasses say how W is built.

    Subclasses implement ``matrix()`` (W as float64 (C, C)), ``log_abs_det(W)``
    (float64 0-d) and ``_add_grads(dW, c)``, which adds to their parameters'
    gradients the gradient of  <dW, W> + c * log|det W|  (dW the gradient of
    the loss w.r.t. W through the data path, c the coefficient of log|det W|
    in the loss).
    """

    stateless = True

    def __init__(self, features):
        super().__init__()
        if int(features) != features or features < 1:
            raise ValueError(f"{type(self).__name__} features must be a positive integer; got {features!r}.")
        self.features = int(features)

    def _initial_matrix(self, matrix, rng):
        """The starting W, float64 (C, C): ``matrix`` checked, or a random rotation (Glow's initialisation)."""
        if matrix is None:
            return random_rotation(self.features, require_rng(rng, f"{type(self).__name__} without a matrix"))
        w = _check_matrix(matrix, type(self).__name__)
        if w.shape[0] != self.features:
            raise ValueError(f"matrix has shape {w.shape}, but features is {self.features}.")
        return w

    def _check_input(self, x, name):
        fix = "Build it with features equal to axis 1 of the data."
        check_channels(x, name, self.features, type(self).__name__, fix)

    def _mix(self, x, m):
        """Apply the (C, C) matrix m to axis 1 of x: out[n, :, ...] = m @ x[n, :, ...]."""
        xp = get_array_module(x)
        xm = xp.moveaxis(x, 1, -1)  # (N, H, W, C): channels last
        return xp.moveaxis(xm @ m.T, -1, 1)  # (N, C, H, W)

    def _outer(self, a, b):
        """sum over samples and pixels of a[n, :, h, w] b[n, :, h, w]^T, float64 (C, C)."""
        xp = get_array_module(a)
        c = self.features
        am = xp.moveaxis(a, 1, -1).reshape(-1, c)  # (N*H*W, C)
        bm = xp.moveaxis(b, 1, -1).reshape(-1, c)  # (N*H*W, C)
        return (am.T @ bm).astype(xp.float64)  # (C, C)

    def forward(self, x):
        self._check_input(x, "x")
        xp = get_array_module(x)
        w64 = self.matrix()  # (C, C) float64
        spatial = math.prod(x.shape[2:])  # H * W (1 for vectors)
        z = self._mix(x, w64.astype(x.dtype))  # (N, C, H, W)
        logdet = xp.ones(x.shape[0], dtype=x.dtype) * (spatial * self.log_abs_det(w64)).astype(x.dtype)  # (N,)
        self._save_cache("forward", (x, w64))
        return z, logdet

    def inverse(self, z):
        self._check_input(z, "z")
        xp = get_array_module(z)
        w64 = self.matrix()
        inv64 = _solve(w64, xp.eye(self.features, dtype=xp.float64), self)  # W^{-1}, (C, C)
        spatial = math.prod(z.shape[2:])
        x = self._mix(z, inv64.astype(z.dtype))  # (N, C, H, W)
        logdet = xp.ones(z.shape[0], dtype=z.dtype) * (-spatial * self.log_abs_det(w64)).astype(z.dtype)  # (N,)
        self._save_cache("inverse", (z, inv64))
        return x, logdet

    def backward(self, dz, dlogdet):
        x, w64 = self._take_cache("forward", "backward")
        spatial = math.prod(x.shape[2:])
        # logdet = H W log|det W| for every sample
        c = spatial * dlogdet.astype(w64.dtype).sum()
        # z = W x per pixel: dW = sum dz x^T, dx = W^T dz
        self._add_grads(self._outer(dz, x), c)
        return self._mix(dz, w64.T.astype(dz.dtype))  # (N, C, H, W)

    def inverse_backward(self, dx, dlogdet):
        z, inv64 = self._take_cache("inverse", "inverse_backward")
        spatial = math.prod(z.shape[2:])
        # logdet = -H W log|det W|
        c = -spatial * dlogdet.astype(inv64.dtype).sum()
        # x = A z per pixel with A = W^{-1}: dA = sum dx z^T, dz = A^T dx
        d_inv = self._outer(dx, z)  # (C, C)
        # A = W^{-1}: d(A) = -A d(W) A, so dL/dW = -A^T dL/dA A^T
        self._add_grads(-inv64.T @ d_inv @ inv64.T, c)
        return self._mix(dx, inv64.T.astype(dx.dtype))  # (N, C, H, W)


class InvertibleLinear(_ChannelMixing):
    """Plain invertible linear map / 1x1 convolution: the matrix W is the parameter.

    Args:
        features: the size of axis 1, D features of vectors or C channels of images.
        dtype: parameter dtype (float32 to train, float64 to check).
        rng: random generator for the initial rotation (``backend.make_rng``);
            required unless ``matrix`` is given.
        matrix: start from this (C, C) invertible matrix instead of a random
            rotation (``from_matrix``).

    Shapes:
        x, z: (N, C) or (N, C, H, W); logdet: (N,). W: (C, C).

    Caches:
        forward keeps x (for dW = sum dz x^T) and W in float64; inverse keeps
        z and W^{-1} in float64 (for dz = W^{-T} dx and the chain through
        the inverse). Each is a (C, C) matrix, cheaper to keep than to redo.

    Math:
        d log|det W| / dW = W^{-T};  d(W^{-1}) = -W^{-1} dW W^{-1}.
        slogdet, W^{-T} and W^{-1} are computed in float64 whatever the
        training dtype, then cast.

    Note:
        Nothing keeps a plain W invertible during training; a W that drifts
        to singular gives log|det W| -> -inf and a failing solve. The LU
        form (``InvertibleLinearLU``) cannot become singular.

    Reference:
        Kingma & Dhariwal (2018), "Glow", section 3.2, Table 1.
    """

    def __init__(self, features, dtype=DEFAULT_DTYPE, rng=None, matrix=None):
        super().__init__(features)
        w = self._initial_matrix(matrix, rng)  # (C, C) float64
        self.add_param("W", to_device(w, get_backend(), dtype=dtype))

    @classmethod
    def from_matrix(cls, matrix, dtype=DEFAULT_DTYPE):
        """The layer with W = matrix ((C, C), invertible)."""
        return cls(numpy.shape(matrix)[0], dtype=dtype, matrix=matrix)

    def matrix(self):
        """W as a float64 (C, C) array."""
        w = self._own_params["W"]
        return w.astype(get_array_module(w).float64)

    def log_abs_det(self, w64):
        """log|det W| by slogdet, float64 0-d."""
        return get_array_module(w64).linalg.slogdet(w64)[1]

    def _add_grads(self, dw, c):
        xp = get_array_module(dw)
        w = self._own_params["W"]
        eye = xp.eye(self.features, dtype=xp.float64)
        inv_t = _solve(w.astype(xp.float64), eye, self).T  # W^{-T} = d log|det W| / dW
        self._own_grads["W"] += (dw + c * inv_t).astype(w.dtype)  # (C, C)


class InvertibleLinearLU(_ChannelMixing):
    """Glow's LU-parameterised invertible linear map / 1x1 convolution.

    W = P L (U + diag(sign_s * exp(log_s))), with fixed P and sign_s and
    learnable L (strictly lower part used; the unit diagonal is implied), U
    (strictly upper part used) and log_s = log|s|. Since L has unit
    diagonal, det W = det P * prod(sign_s * exp(log_s)), so
    log|det W| = sum(log_s), and W stays invertible for any parameters.

    Args:
        features: C, the size of axis 1 (D for vectors).
        dtype: parameter dtype.
        rng: random generator for the initial rotation; required unless ``matrix`` is given.
        matrix: start from the LU decomposition of this (C, C) invertible
            matrix instead of a random rotation (``from_matrix``).

    Shapes:
        x, z: (N, C) or (N, C, H, W); logdet: (N,).
        L, U: (C, C), stored full and zero outside their strict triangle
        (gradients are masked to it); log_s: (C,). Fixed P: (C, C), sign_s: (C,).

    Caches:
        as ``InvertibleLinear``; the factors are rebuilt from the parameters
        in the backward (O(C^3) on a C x C matrix, negligible).

    Math:
        with Lt = L + I, Ut = U + diag(sign_s exp(log_s)), W = P Lt Ut and dW
        the gradient w.r.t. W: dLt = P^T dW Ut^T, dUt = Lt^T P^T dW;
        dL = strict_lower(dLt), dU = strict_upper(dUt),
        dlog_s = diag(dUt) * sign_s * exp(log_s) + (coefficient of log|det W|).

    Reference:
        Kingma & Dhariwal (2018), "Glow", section 3.2, "LU decomposition".
    """

    def __init__(self, features, dtype=DEFAULT_DTYPE, rng=None, matrix=None):
        super().__init__(features)
        w = self._initial_matrix(matrix, rng)  # (C, C) float64
        p, lower, upper = scipy.linalg.lu(w)  # w = p @ lower @ upper, host float64
        s = numpy.diag(upper).copy()  # (C,), nonzero: w is invertible
        xp = get_backend()
        self.P = to_device(p, xp, dtype=numpy.float64)  # fixed permutation, (C, C)
        self.sign_s = to_device(numpy.sign(s), xp, dtype=numpy.float64)  # fixed signs, (C,)
        self.add_param("L", to_device(numpy.tril(lower, -1), xp, dtype=dtype))
        self.add_param("U", to_device(numpy.triu(upper, 1), xp, dtype=dtype))
        self.add_param("log_s", to_device(numpy.log(numpy.abs(s)), xp, dtype=dtype))

    @classmethod
    def from_matrix(cls, matrix, dtype=DEFAULT_DTYPE):
        """The layer whose W equals ``matrix`` ((C, C), invertible), via scipy's LU."""
        return cls(numpy.shape(matrix)[0], dtype=dtype, matrix=matrix)

    def _move_fixed_arrays(self, xp):
        super()._move_fixed_arrays(xp)
        self.P = to_device(self.P, xp)
        self.sign_s = to_device(self.sign_s, xp)

    def _factors(self):
        """(Lt, Ut, scale) in float64: Lt = L + I, Ut = U + diag(scale), scale = sign_s exp(log_s)."""
        xp = get_array_module(self._own_params["L"])
        eye = xp.eye(self.features, dtype=xp.float64)
        lower = xp.tril(self._own_params["L"].astype(xp.float64), -1) + eye  # (C, C)
        scale = self.sign_s * xp.exp(self._own_params["log_s"].astype(xp.float64))  # (C,)
        upper = xp.triu(self._own_params["U"].astype(xp.float64), 1) + xp.diag(scale)  # (C, C)
        return lower, upper, scale

    def matrix(self):
        """W = P (L + I) (U + diag(sign_s exp(log_s))) as a float64 (C, C) array."""
        lower, upper, _ = self._factors()
        return self.P @ lower @ upper

    def log_abs_det(self, w64):
        """log|det W| = sum(log_s), float64 0-d (no determinant computed)."""
        log_s = self._own_params["log_s"]
        return log_s.astype(get_array_module(log_s).float64).sum()

    def _add_grads(self, dw, c):
        xp = get_array_module(dw)
        lower, upper, scale = self._factors()
        # W = P Lt Ut
        d_lower = self.P.T @ dw @ upper.T  # (C, C)
        d_upper = lower.T @ self.P.T @ dw  # (C, C)
        # Lt = tril(L, -1) + I; Ut = triu(U, 1) + diag(sign_s exp(log_s)); log|det W| = sum(log_s)
        grads = self._own_grads
        grads["L"] += xp.tril(d_lower, -1).astype(grads["L"].dtype)
        grads["U"] += xp.triu(d_upper, 1).astype(grads["U"].dtype)
        grads["log_s"] += (xp.diag(d_upper) * scale + c).astype(grads["log_s"].dtype)
