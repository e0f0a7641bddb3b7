"""Tests for minflow/nn/conv2d.py: same-padded stride-1 convolution by gathering (im2col) or scattering (col2im)."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

import minflow.nn.conv2d as conv2d_module
from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn.conv2d import MAX_GATHER_ROWS, Conv2d, im2col, scatter_conv


def naive_conv(x, w, b):
    """y[n, o, i, j] = b[o] + sum_{c, di, dj} w[o, c, di, dj] xpad[n, c, i + di, j + dj], by loops."""
    n, _c, h, wd = x.shape
    o, _, k, _ = w.shape
    p = k // 2
    xpad = numpy.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    y = numpy.empty((n, o, h, wd))
    for i in range(h):
        for j in range(wd):
            patch = xpad[:, :, i : i + k, j : j + k]  # (N, C, K, K)
            y[:, :, i, j] = numpy.einsum("nckl,ockl->no", patch, w) + b
    return y


def make_conv(c, o, k):
    def make(dtype):
        conv = Conv2d(c, o, k, dtype=dtype, rng=make_rng(0))
        return randomize_params(conv, numpy.random.default_rng(1))

    return make


# (C, O): gathers in the forward pass and scatters dx (C < O), scatters in the forward pass and
# gathers dy (O < C), gathers both ways (C = O)
CHANNELS = [(3, 4), (4, 3), (3, 3)]


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_matches_naive_loops(k, channels, xp, rng):
    c, o = channels
    conv = make_conv(c, o, k)(numpy.float64).to(xp)
    x = rng.standard_normal((2, c, 5, 6))  # H != W catches swapped axes
    y = to_numpy(conv.forward(to_device(x, xp)))
    expected = naive_conv(x, to_numpy(conv.params["W"]), to_numpy(conv.params["b"]))
    numpy.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_gradcheck(k, channels, xp, rng):
    # input, W and b by central differences in float64; float32 kept
    c, o = channels
    assert_block_passes_all_checks(make_conv(c, o, k), rng.standard_normal((2, c, 5, 6)), xp)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_scatter_conv_matches_naive_loops_on_images_smaller_than_the_kernel(k, xp, rng):
    # a 5x5 kernel on 2x3 images: some taps fall wholly outside the image and add nothing
    x, w = rng.standard_normal((2, 4, 2, 3)), rng.standard_normal((3, 4, k, k))
    out = xp.zeros((3, 2, 2, 3))
    y = scatter_conv(to_device(x, xp), to_device(w, xp), out)
    numpy.testing.assert_allclose(to_numpy(y), naive_conv(x, w, numpy.zeros(3)), rtol=1e-12, atol=1e-12)
    numpy.testing.assert_array_equal(to_numpy(out), to_numpy(y).transpose(1, 0, 2, 3))  # y is a view of out


@pytest.mark.parametrize("channels", [(1, 6), (6, 1), (2, 32), (32, 2), (8, 8)])
def test_conv2d_copies_k_squared_times_the_smaller_channel_count(channels, monkeypatch, rng):
    # each temporary (a gather's cols: K*K*C_in per pixel; a scatter's taps: K*K*C_out per pixel)
    # holds K*K*min(C, O) numbers per pixel, in the forward pass and in the backward
    c, o = channels
    copied = []

    def counting_im2col(x, kernel_size):
        copied.append(("gather", x.shape[1]))
        return im2col(x, kernel_size)

    def counting_scatter_conv(x, w, out):
        copied.append(("scatter", w.shape[0]))
        return scatter_conv(x, w, out)

    monkeypatch.setattr(conv2d_module, "im2col", counting_im2col)
    monkeypatch.setattr(conv2d_module, "scatter_conv", counting_scatter_conv)
    conv = make_conv(c, o, 3)(numpy.float64)
    conv.forward(rng.standard_normal((3, c, 4, 4)))
    conv.backward(rng.standard_normal((3, o, 4, 4)))
    assert {channels for _, channels in copied} == {min(c, o)}
    assert {how for how, _ in copied} == ({"gather"} if c == o else {"gather", "scatter"})


def test_im2col_layout(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    cols = im2col(x, 3)
    assert cols.shape == (2 * 4 * 5, 9 * 3)
    xpad = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    row = (1 * 4 + 2) * 5 + 3  # (n, i, j) = (1, 2, 3)
    expected = xpad[1, :, 2:5, 3:6].transpose(1, 2, 0).ravel()  # (di, dj, c) order
    numpy.testing.assert_array_equal(cols[row], expected)


def test_conv2d_zero_init_outputs_zero(rng):
    conv = Conv2d(2, 3, init="zeros", dtype=numpy.float64, rng=make_rng(0))
    y = conv.forward(to_device(rng.standard_normal((4, 2, 3, 3))))  # on the layer's (default) backend
    numpy.testing.assert_array_equal(to_numpy(y), numpy.zeros((4, 3, 3, 3)))


def test_conv2d_uniform_init_bound():
    conv = Conv2d(8, 16, 3, rng=make_rng(0))
    bound = 1 / numpy.sqrt(8 * 9)
    assert conv.params["W"].shape == (16, 8, 3, 3) and conv.params["W"].dtype == numpy.float32
    assert 0.9 * bound < numpy.abs(conv.params["W"]).max() <= bound
    assert numpy.abs(conv.params["b"]).max() <= bound
    assert conv.num_params() == 16 * 8 * 9 + 16


def test_conv2d_gradients_accumulate(rng):
    conv = make_conv(2, 2, 3)(numpy.float64)
    x = to_device(rng.standard_normal((2, 2, 3, 3)))
    dy = to_device(rng.standard_normal((2, 2, 3, 3)))
    conv.forward(x)
    conv.backward(dy)
    once = {k: to_numpy(g).copy() for k, g in conv.grads.items()}
    conv.forward(x)
    conv.backward(dy)
    for k, g in conv.grads.items():
        numpy.testing.assert_allclose(to_numpy(g), 2 * once[k], rtol=1e-12)


def test_conv2d_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd kernel sizes"):
        Conv2d(1, 1, 2, rng=make_rng(0))


def test_conv2d_rejects_wrong_shape():
    conv = Conv2d(3, 4, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3, H, W\); got \(2, 8, 8\)"):
        conv.forward(numpy.zeros((2, 8, 8), numpy.float32))


def test_conv2d_backward_without_forward_is_an_error():
    with pytest.raises(RuntimeError, match="forward"):
        Conv2d(1, 1, rng=make_rng(0)).backward(numpy.zeros((1, 1, 2, 2), numpy.float32))


def test_conv2d_gathers_in_batch_slices_with_the_same_result(rng):
    # slices that do not divide the batch: every slice path runs, and the result is that of one slice
    x = to_device(rng.standard_normal((5, 3, 4, 6)))
    dy = to_device(rng.standard_normal((5, 4, 4, 6)))
    whole, sliced = make_conv(3, 4, 3)(numpy.float64), make_conv(3, 4, 3)(numpy.float64)
    whole.gather_fraction, sliced.gather_fraction = 1.0, 0.4  # one slice of 5 images; slices of 2, 2, 1
    assert [s.stop - s.start for s in sliced._batch_slices(5)] == [2, 2, 1]
    numpy.testing.assert_allclose(to_numpy(sliced.forward(x)), to_numpy(whole.forward(x)), rtol=1e-13, atol=1e-13)
    numpy.testing.assert_allclose(to_numpy(sliced.backward(dy)), to_numpy(whole.backward(dy)), rtol=1e-13, atol=1e-13)
    for name in ("W", "b"):
        numpy.testing.assert_allclose(to_numpy(sliced.grads[name]), to_numpy(whole.grads[name]), rtol=1e-12, atol=1e-12)


def test_conv2d_slices_gather_at_most_the_input_size():
    # by default 1/K^2 of the batch at a time (at least one image), so a slice's K*K*C-wide im2col
    # holds no more numbers than the array it is gathered from
    conv3, conv5 = Conv2d(2, 2, 3, rng=make_rng(0)), Conv2d(2, 2, 5, rng=make_rng(0))
    assert [s.stop - s.start for s in conv3._batch_slices(64)] == [7] * 9 + [1]
    assert [s.stop - s.start for s in conv5._batch_slices(64)] == [2] * 32
    assert [s.stop - s.start for s in conv3._batch_slices(5)] == [1] * 5
    for conv, n in ((conv3, 64), (conv5, 64), (conv3, 9), (conv3, 1000)):
        largest = max(s.stop - s.start for s in conv._batch_slices(n))
        assert largest * conv.kernel_size**2 <= max(n, conv.kernel_size**2)
    conv3.gather_fraction = 0.25
    assert [s.stop - s.start for s in conv3._batch_slices(64)] == [16] * 4


def test_conv2d_slices_of_a_large_batch_hold_at_most_max_gather_rows_pixels(rng):
    # a large batch (sampling 1,000 digits) is gathered MAX_GATHER_ROWS output pixels at a time,
    # at least one image, with the result of one slice
    conv = Conv2d(2, 3, 3, dtype=numpy.float64, rng=make_rng(0))
    conv.gather_fraction = 0.25
    assert [s.stop - s.start for s in conv._batch_slices(1000, 64)] == [MAX_GATHER_ROWS // 64] * (1000 // 16) + [
        1000 % 16
    ] * (1000 % 16 > 0)
    assert [s.stop - s.start for s in conv._batch_slices(3, 4096)] == [1, 1, 1]
    x = rng.standard_normal((40, 2, 8, 8))  # 2560 pixels: three slices of 16, 16 and 8 images
    conv.gather_fraction = 1.0
    assert len(conv._batch_slices(40, 64)) == 3
    sliced = conv.forward(x)
    cols = im2col(x, 3)  # the one-slice product, written out
    w_rows = conv.params["W"].transpose(0, 2, 3, 1).reshape(3, -1)
    whole = (cols @ w_rows.T + conv.params["b"]).reshape(40, 8, 8, 3).transpose(0, 3, 1, 2)
    numpy.testing.assert_allclose(sliced, whole, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_conv2d_rejects_a_gather_fraction_outside_0_1(fraction):
    conv = Conv2d(1, 1, rng=make_rng(0))
    conv.gather_fraction = fraction
    with pytest.raises(ValueError, match=r"gather_fraction must be in \(0, 1\]"):
        conv.forward(numpy.zeros((2, 1, 4, 4), numpy.float32))


@pytest.mark.parametrize("channels", CHANNELS)
def test_conv2d_gradcheck_in_batch_slices(channels, rng):
    c, o = channels

    def make(dtype):
        conv = make_conv(c, o, 3)(dtype)
        conv.gather_fraction = 0.01  # one image per slice
        return conv

    assert_block_passes_all_checks(make, rng.standard_normal((3, c, 4, 4)))


def test_conv2d_scatters_in_slices_no_larger_than_the_source_with_the_result_of_one_slice(rng):
    # 4 -> 3 channels: taps hold 27 numbers per pixel, the source 4, so 4/27 of the batch at a time
    conv = make_conv(4, 3, 3)(numpy.float64)
    assert [s.stop - s.start for s in conv._slices_within(14, 4, 27)] == [2] * 7
    assert [s.stop - s.start for s in conv._slices_within(5, 4, 27)] == [1] * 5
    assert [s.stop - s.start for s in conv._slices_within(64, 32, 18)] == [64]  # D8's 32 -> 2: the whole batch
    x, dy = rng.standard_normal((14, 4, 5, 6)), rng.standard_normal((14, 3, 5, 6))
    w = conv.params["W"]
    numpy.testing.assert_allclose(conv.forward(x), naive_conv(x, w, conv.params["b"]), rtol=1e-12, atol=1e-12)
    dx = conv.backward(dy)
    # dx = conv(dy, Wf), Wf[c, o, di, dj] = W[o, c, K-1-di, K-1-dj]; dW = sum of dy times x's receptive fields
    dx_expected = naive_conv(dy, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), numpy.zeros(4))
    xpad = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dW_expected = numpy.stack(
        [
            [numpy.einsum("nohw,nchw->oc", dy, xpad[:, :, di : di + 5, dj : dj + 6]) for dj in range(3)]
            for di in range(3)
        ]
    ).transpose(2, 3, 0, 1)
    numpy.testing.assert_allclose(dx, dx_expected, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(conv.grads["W"], dW_expected, rtol=1e-12, atol=1e-12)
