"""Conv2d: a 2-D convolution (stride 1, "same" zero padding, odd kernel) with a hand-written backward.

Layout (N, C, H, W), as in PyTorch. With K the kernel size and P = K // 2,
xpad is x with P zeros on every side, so y keeps the height and width of x:

    y[n, o, i, j] = b[o] + sum_{c, di, dj} W[o, c, di, dj] * xpad[n, c, i + di, j + dj]

(a cross-correlation, like every deep-learning "convolution").

im2col turns this into ONE matrix product. Each row of ``cols`` is the
receptive field of one output pixel, gathered by one strided copy from a
channels-last padded copy of x (see ``im2col``):

    cols[(n, i, j), (di, dj, c)] = xpad[n, c, i + di, j + dj]      (N*H*W, K*K*C)
    y_rows = cols @ W2^T + b,  W2[o, (di, dj, c)] = W[o, c, di, dj]    (N*H*W, O)

Backward. A stride-1 same-padded convolution has as its adjoint the same
operation with the kernel flipped in space and its in/out channels swapped,
Wf[c, o, di, dj] = W[o, c, K-1-di, K-1-dj]. So with dcols = im2col(dy), the
receptive fields of dy, and Wf2[(di, dj, o), c] = Wf[c, o, di, dj]:

    dx_rows = dcols @ Wf2                       (N*H*W, C)
    dWf2    = dcols^T @ x_rows                  (K*K*O, C), then flipped back into dW
    db      = sum of dy over images and pixels  (O,)

The second line follows from the first. The weights reach the loss only
through sum(dy * y), with dy held fixed and y linear in W; by the adjoint
identity that sum equals sum(x * dx) = sum over r, c of
x_rows[r, c] * (dcols @ Wf2)[r, c] (bias aside), which is linear in Wf2 with
gradient dcols^T @ x_rows. One gather of dy's receptive fields thus serves
both products, and x, as cached, needs no im2col of its own.

Two ways to compute one convolution. Gathering (im2col, above) copies
K*K*C numbers per output pixel, then multiplies. Scattering multiplies
first, every input pixel by every tap of the kernel, and then adds each
tap's image into the output, shifted by the tap's offset (col2im):

    taps[di, dj, o, n, a, b] = sum_c W[o, c, di, dj] x[n, c, a, b]     one product, K*K*O numbers per pixel
    y[n, o, i, j] = b[o] + sum_{di, dj} taps[di, dj, o, n, i + di - P, j + dj - P]

where a tap image shifted past the border adds nothing (the zero padding).
The copies cost K*K*C numbers per pixel one way and K*K*O the other, so
Conv2d gathers when C <= O and scatters when O < C (a conditioner's last
convolution, 32 -> 2 channels in D8). The backward's dx is a convolution
from O channels to C and makes the same choice the other way round: a
conditioner's first convolution (1 -> 32 channels) scatters dy into dx and
gathers x, 9 numbers per pixel, for dW = dy_rows^T @ im2col(x).

Speed: three matrix products per training step (y, dW, dx) in float32 carry
almost all the arithmetic; the gathers are one strided copy each, and no
array is transposed between convolutions (see "Memory layout" below).

Memory: ``cols`` holds K*K numbers per number of the array it is gathered
from. So by default it is gathered 1/K^2 of the batch at a time (at least
one image) and each slice's matrix products write into the full outputs: the
temporary is then no larger than the array it comes from (x in the forward
pass, dy in the backward), whatever the batch or the image size. Larger
slices mean fewer, larger matrix products, which run faster (most of all
with several BLAS threads): a layer that runs while little else is held in
memory can set ``gather_fraction`` higher (``minflow.zoo.d8`` does so for
its first scales). A slice never holds more than ``MAX_GATHER_ROWS`` output
pixels (at least one image) either: with C = 32, K = 3 in float32 its
``cols`` is then about 1 MB, which stays in the CPU's cache between the
gather that writes it and the product that reads it. On a large batch
that beats slices of a fraction of the batch, which spill to main memory:
D8 samples 1,000 digits in 0.6 times their time (benchmarks/RESULTS.md).
A training batch of 64 digits never reaches the cap. Scattering's ``taps``
(K*K*O numbers per pixel, O < C), and the backward's gather of x where
C < O (K*K*C per pixel, against dy's O), are made for as much of the batch
as keeps them no larger than the array they come from: in D8, the whole
batch, which is fastest for the many short passes of a scatter.
"""

import math

from ..backend import DEFAULT_DTYPE, get_array_module, get_backend, uniform, zeros
from .module import Module

__all__ = ["CONV_INITS", "Conv2d", "im2col", "scatter_conv"]

CONV_INITS = ("uniform", "zeros")
MAX_GATHER_ROWS = 1024  # output pixels whose receptive fields are gathered at once, at most (see Memory)


def im2col(x, kernel_size):
    """The receptive fields of a same-padded, stride-1 convolution, one row per output pixel.

    Args:
        x: (N, C, H, W) array.
        kernel_size: odd K.

    Returns:
        cols: (N*H*W, K*K*C), cols[(n, i, j), (di, dj, c)] = xpad[n, c, i + di, j + dj],
        with xpad = x zero-padded by K // 2 on each side.

    In a channels-last padded copy of x, the K*C numbers (dj, c) of kernel
    row di of output pixel (i, j) lie next to each other. So a strided view
    of shape (N, H, W, K, K*C) (``as_strided``: overlapping windows, no copy)
    is exactly ``cols``, and one reshape gathers it with long contiguous runs;
    the same code runs on NumPy and CuPy.
    """
    xp = get_array_module(x)
    n, c, height, width = x.shape
    k, p = kernel_size, kernel_size // 2
    xpad = xp.zeros((n, height + 2 * p, width + 2 * p, c), dtype=x.dtype)  # channels last, zero border
    xpad[:, p : p + height, p : p + width, :] = x.transpose(0, 2, 3, 1)
    s_n, s_h, s_w, s_c = xpad.strides  # bytes
    windows = xp.lib.stride_tricks.as_strided(
        xpad, shape=(n, height, width, k, k * c), strides=(s_n, s_h, s_w, s_h, s_c)
    )
    return windows.reshape(n * height * width, k * k * c)  # the one copy


def scatter_conv(x, W, out):
    """y = conv(x, W) without bias, by multiplying first and adding shifted tap images (col2im).

    Args:
        x: (N, C, H, W) array.
        W: (O, C, K, K) kernel, odd K.
        out: (O, N, H, W) array that receives y, channels first.

    Returns:
        y: (N, O, H, W), a view of ``out``,
        y[n, o, i, j] = sum_{c, di, dj} W[o, c, di, dj] xpad[n, c, i + di, j + dj] (as ``Conv2d``).
    """
    n, c, height, width = x.shape
    o, _, k, _ = W.shape
    p = k // 2
    W_taps = W.transpose(2, 3, 0, 1).reshape(k * k * o, c)  # ((di, dj, o), C)
    x_channels = x.transpose(1, 0, 2, 3).reshape(c, n * height * width)  # (C, N*H*W), a view if channels-last
    # taps[di, dj, o, n, a, b] = sum_c W[o, c, di, dj] x[n, c, a, b]: every input pixel times every tap
    taps = (W_taps @ x_channels).reshape(k, k, o, n, height, width)
    out[...] = taps[p, p]  # (O, N, H, W): the centre tap reaches every output pixel unshifted
    for di in range(k):
        for dj in range(k):
            if (di, dj) == (p, p):
                continue
            a, b = di - p, dj - p  # y[i, j] += taps[di, dj][i + a, j + b], where i + a, j + b lie in the image
            out[:, :, max(-a, 0) : height - max(a, 0), max(-b, 0) : width - max(b, 0)] += taps[
                di, dj, :, :, max(a, 0) : height + min(a, 0), max(b, 0) : width + min(b, 0)
            ]
    return out.transpose(1, 0, 2, 3)  # (N, O, H, W)


def slices_of(n, step):
    """Consecutive slices of ``step`` images (at least one; the last may be shorter) covering a batch of n."""
    step = max(1, step)
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def channels_last_rows(x):
    """(N, C, H, W) -> (N*H*W, C) rows, one per pixel; no copy if x has channels-last memory."""
    n, c, height, width = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n * height * width, c)


class Conv2d(Module):
    """2-D convolution with stride 1 and "same" zero padding, via im2col and one matrix product.

    Args:
        in_channels: C.
        out_channels: O.
        kernel_size: odd K (3 in the D8 conditioners); padding is K // 2.
        init: "uniform": W, b ~ U(-1/sqrt(C K K), 1/sqrt(C K K)) (PyTorch's
            default); "zeros": W = b = 0 (the last layer of a conditioner, so
            that a coupling starts as the identity).
        dtype: parameter dtype (float32 to train, float64 for checks).
        rng: random generator (``backend.make_rng(seed)``), a required keyword.

    Shapes:
        x: (N, C, H, W) -> y: (N, O, H, W); W: (O, C, K, K); b: (O,).

    Memory layout:
        y and dx come back as (N, C, H, W)-shaped views of the memory the
        matrix products produce, with no transposing copy: channels-last
        when gathered, channels-first when scattered (the y of a layer
        with O < C, the dx of one with C < O). Elementwise operations keep
        that layout (NumPy's default order "K"), so the next convolution's
        im2col and the gathers of dy in the backward read contiguous
        memory; a reshape elsewhere copies as needed.

    Caches:
        forward keeps x (N, C, H, W), which dW needs. Keeping ``cols``
        instead would hold K*K = 9 times more memory per layer until the
        backward; the backward gathers dy's receptive fields (x's where C < O).

    Attributes:
        gather_fraction: the fraction of the batch whose receptive fields
            are gathered at once; None (default) means 1/K^2.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, init="uniform", dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        if int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"Conv2d supports odd kernel sizes (1, 3, 5, ...) for 'same' padding; got {kernel_size!r}."
            )
        if init not in CONV_INITS:
            raise ValueError(f"Conv2d init must be one of {CONV_INITS}; got {init!r}.")
        c, o, k = int(in_channels), int(out_channels), int(kernel_size)
        if init == "uniform":
            bound = 1 / math.sqrt(c * k * k)
            W = uniform((o, c, k, k), -bound, bound, dtype, rng)
            b = uniform((o,), -bound, bound, dtype, rng)
        else:
            W = zeros((o, c, k, k), dtype, get_backend())
            b = zeros((o,), dtype, get_backend())
        self.in_channels, self.out_channels, self.kernel_size = c, o, k
        self.gather_fraction = None
        self.add_param("W", W)
        self.add_param("b", b)

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d expects x of shape (N, {self.in_channels}, H, W); got {tuple(x.shape)}. "
                "Images are (batch, channels, height, width); add a channel axis with x[:, None] if needed."
            )

    def _batch_slices(self, n, pixels=1):
        """Slices of the batch whose receptive fields are gathered at once (at least one image each).

        ``gather_fraction`` of the n images, and no more than MAX_GATHER_ROWS // pixels images
        (pixels: H * W of one image).
        """
        fraction = self.gather_fraction if self.gather_fraction is not None else 1 / self.kernel_size**2
        if not 0 < fraction <= 1:
            raise ValueError(f"Conv2d gather_fraction must be in (0, 1] (None: 1/K^2); got {fraction!r}.")
        # + 1e-9: 100 * 0.29 is 28.999999999999996 in floats
        return slices_of(n, min(int(n * fraction + 1e-9), MAX_GATHER_ROWS // pixels))

    def _slices_within(self, n, source_channels, temporary_channels):
        """Slices of the batch (at least one image each), the whole batch where it can.

        A slice's temporary, temporary_channels numbers per pixel, holds no more numbers than the
        source array's source_channels per pixel. Used where the temporary is K*K times the smaller
        channel count (scatter's taps, the backward's gather of x): whole batches run fastest there.
        """
        return slices_of(n, int(n * min(1, source_channels / temporary_channels) + 1e-9))

    def forward(self, x):
        self._check_input(x)
        xp = get_array_module(x)
        n, _, height, width = x.shape
        W, b = self._own_params["W"], self._own_params["b"]
        c, o, k = self.in_channels, self.out_channels, self.kernel_size
        self._save_cache("forward", x)
        if o < c:  # scatter: K*K*O numbers per pixel, fewer than gathering's K*K*C
            y_channels = xp.empty((o, n, height, width), dtype=x.dtype)  # (O, N, H, W)
            for images in self._slices_within(n, c, k * k * o):  # taps: K*K*O numbers per pixel
                scatter_conv(x[images], W, out=y_channels[:, images])
                y_channels[:, images] += b[:, None, None, None]
            return y_channels.transpose(1, 0, 2, 3)  # (N, O, H, W), channels-first memory
        W_rows = W.transpose(0, 2, 3, 1).reshape(o, -1)  # (O, K*K*C), columns ordered (di, dj, c) like cols
        y_rows = xp.empty((n * height * width, o), dtype=x.dtype)  # (N*H*W, O)
        for images in self._batch_slices(n, height * width):
            rows = slice(images.start * height * width, images.stop * height * width)
            # y_rows = cols @ W_rows^T + b, one batch slice of cols at a time
            xp.matmul(im2col(x[images], k), W_rows.T, out=y_rows[rows])
            y_rows[rows] += b
        return y_rows.reshape(n, height, width, o).transpose(0, 3, 1, 2)  # (N, O, H, W), channels-last memory

    def backward(self, dy):
        x = self._take_cache("forward", "backward")  # (N, C, H, W)
        xp = get_array_module(dy)
        n, o, height, width = dy.shape
        W = self._own_params["W"]
        c, k = self.in_channels, self.kernel_size
        self._own_grads["b"] += xp.einsum("nohw->o", dy)  # (O,): y = ... + b[o] at every pixel of every image
        if c < o:  # dx = conv(dy, Wf) from O channels to C: scatter, and gather x (K*K*C per pixel) for dW
            W_flipped = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # Wf (C, O, K, K)
            dW_rows = self._own_grads["W"].transpose(0, 2, 3, 1)  # (O, K, K, C), a view, (di, dj, c) like cols
            dx_channels = xp.empty((c, n, height, width), dtype=dy.dtype)  # (C, N, H, W)
            for images in self._slices_within(n, o, k * k * c):  # cols and taps: K*K*C numbers per pixel
                dy_rows = channels_last_rows(dy[images])  # (rows, O)
                dW_rows += (dy_rows.T @ im2col(x[images], k)).reshape(o, k, k, c)  # dW2 = dy_rows^T cols
                scatter_conv(dy[images], W_flipped, out=dx_channels[:, images])
            return dx_channels.transpose(1, 0, 2, 3)  # (N, C, H, W), channels-first memory
        # Wf2[(di, dj, o), c] = W[o, c, K-1-di, K-1-dj]: the flipped, transposed kernel as a matrix
        W_flipped = W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(k * k * o, c)  # (K*K*O, C)
        # dW[o, c, di, dj] = dWf2[(K-1-di, K-1-dj, o), c]: dWf2 is added into this flipped view of dW
        dW_flipped = self._own_grads["W"][:, :, ::-1, ::-1].transpose(2, 3, 0, 1)  # (K, K, O, C), a view
        dx_rows = xp.empty((n * height * width, c), dtype=dy.dtype)  # (N*H*W, C)
        for images in self._batch_slices(n, height * width):
            rows = slice(images.start * height * width, images.stop * height * width)
            dcols = im2col(dy[images], k)  # (rows, K*K*O), the receptive fields of dy
            xp.matmul(dcols, W_flipped, out=dx_rows[rows])  # dx = conv(dy, Wf)
            dW_flipped += (dcols.T @ channels_last_rows(x[images])).reshape(k, k, o, c)  # dWf2 = dcols^T x_rows
            del dcols  # freed before the next slice is gathered, so only one slice exists at a time
        return dx_rows.reshape(n, height, width, c).transpose(0, 3, 1, 2)  # (N, C, H, W), channels-last memory
