# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Flows on images: a multi-scale RealNVP for handwritten digits
#
# Everything so far lived in 2D. This lesson takes the same ideas to images: the
# 1,797 handwritten digits of 8×8 pixels with 17 grey levels that ship with minflow.
# Images bring four new problems, each with a standard answer from RealNVP (Dinh,
# Sohl-Dickstein & Bengio 2016): pixels are **discrete** (dequantise, and report bits
# per dimension), they live in a **bounded** range (a logit transform), a coupling
# needs **spatial** masks and a convolutional conditioner, and a deep flow at full
# resolution is **expensive** (squeeze and factor out: the multi-scale architecture).
#
# **You will learn to**
# 1. turn a density on $[0,1)^D$ into a bound on the likelihood of discrete pixels, in bits per dimension;
# 2. derive the logit transform's log-det and backward;
# 3. build image couplings with checkerboard and channel masks, and a convolution's backward by im2col;
# 4. see why squeeze and factor-out have log-det 0 and how the multi-scale model is one bijection;
# 5. train the reference model D8 and compare its test bits/dim with baselines.
#
# **Time:** about 75 minutes (the full run trains D8 for 20 epochs, a few minutes).
# **Prerequisites:** lessons 02 and 03.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.backend import make_rng
from minflow.data.digits import N_LEVELS, load_digits
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.image_masks import channel_mask, checkerboard_mask
from minflow.flows.preprocessing import Logit, dequantize
from minflow.flows.squeeze import Squeeze, squeeze
from minflow.gradcheck import brute_force_logdet, check_module_gradients, gradcheck
from minflow.nn.conv2d import Conv2d, im2col, scatter_conv
from minflow.optim import Adam
from minflow.zoo.d8 import D8_PARAMETERS, d8, evaluate_bpd

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_EPOCHS = 1 if FAST else 20  # D8 epochs (24 steps each on the full training set)
TRAIN_SIZE = 128 if FAST else 1497  # training images used
EVAL_DRAWS = 1 if FAST else 10  # dequantisation draws per test evaluation (D8: 10)
N_TEST_EVAL = 100 if FAST else 300  # test images evaluated

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
rng = np.random.default_rng(0)
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)

# %% [markdown]
# ## 1. The data, and what "likelihood" means for discrete pixels
#
# `load_digits` returns integer images of shape $(N, 1, 8, 8)$ with values
# $0, \dots, 16$: $D = 64$ dimensions with $k = 17$ levels each, and a fixed split into
# 1,497 training and 300 test images.

# %%
train, test = load_digits("train"), load_digits("test")
print(f"train {train.shape} {train.dtype}, test {test.shape}, values {train.min()}..{train.max()}")

fig, axes = plt.subplots(3, 12, figsize=(9, 2.4))
for ax, img in zip(axes.ravel(), train[:36]):
    ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=16)
    ax.axis("off")
fig.suptitle("training digits (8x8, 17 grey levels)")
fig.tight_layout()
fig.savefig(f"{FIGDIR}/06_digits.png")
plt.show()

# %% [markdown]
# A flow is a density on $\mathbb R^D$; a discrete image has a probability. Put a
# density $q$ on $[0, 1)^D$ and give each integer image $x$ the mass of its cell
# $[x/k, (x+1)/k)$:
#
# $$P(x) = \int_{\text{cell}(x)} q(v)\, dv = k^{-D}\int_{[0,1)^D} q\Big(\frac{x + u}{k}\Big)\, du = k^{-D}\;\mathbb E_{u\sim U[0,1)^D}\big[q(v)\big], \qquad v = \frac{x + u}{k},$$
#
# substituting $v = (x + u)/k$, $dv = k^{-D} du$. By Jensen's inequality
# ($\log$ is concave), $\log \mathbb E[q] \ge \mathbb E[\log q]$, so
#
# $$\log P(x) \;\ge\; \mathbb E_u\big[\log q(v)\big] - D\ln k.$$
#
# Training maximises the right-hand side with **uniform dequantisation**: fresh
# noise $u$ for every batch (Theis, van den Oord & Bethge 2016). We report it in
# **bits per dimension**, the number of bits a code built from the model would need
# per pixel:
#
# $$\mathrm{bpd} = \frac{-\big(\log q(v) - D\ln k\big)}{D\ln 2}.$$
#
# A uniform $q$ ($\log q = 0$) gives $\log_2 17 = 4.087$ bpd: the cost of sending each
# pixel with no model at all. `FlowModel.bits_per_dim(log_q, n_levels)` does this conversion.

# %%
v, logdet_deq = dequantize(train[:4], N_LEVELS, make_rng(0), np.float64)
print("one row of a digit:      ", train[0, 0, 3])
print("dequantised, v = (x+u)/k:", v[0, 0, 3].round(3))
uniform_bpd = math.log2(N_LEVELS)
print(f"uniform baseline: log2(17) = {uniform_bpd:.3f} bits per dimension")

# %% [markdown]
# ## 2. The logit transform
#
# $v$ lives in $[0, 1)$, a bounded box where a Gaussian-based flow would waste mass
# and densities blow up at the edges. The logit maps it to $\mathbb R$, keeping a margin
# $a$ (0.05 in D8) from 0 and 1:
#
# $$p = a + (1 - 2a)\, v, \qquad y = \log p - \log(1 - p).$$
#
# **Log-det.** Elementwise, so the Jacobian is diagonal with
# $\frac{dy}{dv} = (1 - 2a)\Big(\frac1p + \frac1{1-p}\Big) = \frac{1 - 2a}{p(1-p)}$:
#
# $$\ell = \sum_i \big[\ln(1 - 2a) - \ln p_i - \ln(1 - p_i)\big].$$
#
# **Backward.** Two paths reach $v_i$: through $y_i$, and through $\ell$ with
# $\frac{\partial\ell}{\partial p_i} = -\frac1{p_i} + \frac1{1 - p_i} = \frac{2p_i - 1}{p_i(1 - p_i)}$. With $\partial p/\partial v = 1 - 2a$:
#
# $$\bar v = \frac{(1 - 2a)\,\big(\bar y + \bar\ell\,(2p - 1)\big)}{p\,(1 - p)}.$$
#
# In D8 the logit is the model's **first layer**, so `model.log_prob(v)` already
# includes its log-det, and the bits per dimension above are those of $v$.

# %%
a = 0.05
v_small = rng.uniform(0, 1, size=(3, 1, 2, 2))
p = a + (1 - 2 * a) * v_small
y_mine = np.log(p) - np.log1p(-p)
logdet_mine = (math.log(1 - 2 * a) - np.log(p) - np.log1p(-p)).reshape(3, -1).sum(axis=1)
y_minflow, logdet_minflow = Logit(a).forward(v_small)
logit_diff = max(np.abs(y_mine - y_minflow).max(), np.abs(logdet_mine - logdet_minflow).max())

dy, dlogdet = rng.standard_normal(y_mine.shape), rng.standard_normal(3)
dv_mine = (1 - 2 * a) * (dy + dlogdet[:, None, None, None] * (2 * p - 1)) / (p * (1 - p))
logit = Logit(a)
logit.forward(v_small)
logit_diff = max(logit_diff, np.abs(dv_mine - logit.backward(dy, dlogdet)).max())
print(f"inline logit (forward, log-det, backward) vs minflow: {logit_diff:.1e}")
logit_report = gradcheck(Logit(a), v_small, verbose=False)
print(f"Logit gradcheck: ok = {logit_report.ok}, worst error {logit_report.max_error:.1e}")
assert logit_diff < 1e-10 and logit_report.ok

# %% [markdown]
# ## 3. Couplings for images: masks and a convolutional conditioner
#
# An image coupling is lesson 02's coupling with two kinds of mask (True = copied):
#
# - **checkerboard** $b \in \{0,1\}^{H\times W}$: pixel $(i, j)$ copied when $(i + j) \bmod 2 = q$;
# - **channel**: the first (or second) half of the channels copied, at every pixel.
#
# With a checkerboard, minflow feeds the conditioner the masked image $x \odot b$ (all
# channels) and zeroes $s$ and $t$ on the copied pixels, with $f = 1 - b$:
#
# $$z = x \odot e^{s \odot f} + t \odot f, \qquad (s, t) = \mathrm{net}(x \odot b), \qquad \ell = \sum_{c,i,j} f_{ij}\, s_{cij}.$$
#
# On copied pixels $z = x$; on the others the affine map. The Jacobian is still
# triangular after ordering the copied pixels first. The backward is lesson 03's,
# with the masks as two more elementwise products: $\bar s$ and $\bar t$ are multiplied
# by $f$ before entering the network, and the network's input gradient by $b$,
#
# $$\bar x = \bar z \odot e^{s\odot f} + b \odot \mathrm{net.backward}\big([\bar{\tilde s}, \bar t] \odot f\big).$$
#
# The conditioner is a small ResNet of 3×3 convolutions, so every transformed pixel
# is computed from a neighbourhood of copied pixels.

# %%
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, q in zip(axes[:2], (0, 1)):
    ax.imshow(checkerboard_mask(8, 8, q), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"checkerboard, parity {q}")
for ax, first in zip(axes[2:], (True, False)):
    ax.imshow(channel_mask(4, first)[:, None].repeat(3, axis=1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"channels, first={first}")
    ax.set_ylabel("channel")
for ax in axes:
    ax.set(xticks=[], yticks=[])
fig.suptitle("image masks (white = copied, black = transformed)")
fig.tight_layout()
fig.savefig(f"{FIGDIR}/06_masks.png")
plt.show()

coupling = ImageAffineCoupling(1, checkerboard_mask(4, 4, 0), hidden=4, n_blocks=1, dtype=np.float64, rng=make_rng(1))
for prm in coupling.params.values():  # random weights everywhere (the last conv starts at zero)
    prm[...] = 0.3 * rng.standard_normal(prm.shape)
x_img = rng.standard_normal((2, 1, 4, 4))
z_img, _ = coupling.forward(x_img)
copied = checkerboard_mask(4, 4, 0)
print("copied pixels unchanged:", np.allclose(z_img[:, 0][:, copied], x_img[:, 0][:, copied]))
coupling_report = gradcheck(coupling, x_img, verbose=False)
print(f"ImageAffineCoupling gradcheck: ok = {coupling_report.ok}, worst error {coupling_report.max_error:.1e}")
assert coupling_report.ok

# %% [markdown]
# **The convolution's backward, by im2col.** A 3×3 "same" convolution
# $y_{n,o,i,j} = b_o + \sum_{c,\delta_i,\delta_j} W_{o,c,\delta_i,\delta_j}\, x^{\mathrm{pad}}_{n,c,i+\delta_i,j+\delta_j}$ becomes
# one matrix product once each output pixel's receptive field is copied into a row:
# `cols` has shape $(NHW, 9C)$ and
#
# $$Y = \mathrm{cols}\; W_2^\top + b, \qquad W_2 \in \mathbb R^{O\times 9C}.$$
#
# The backward of a matrix product (lesson 03's linear layer) gives
# $\bar W_2 = \bar Y^\top \mathrm{cols}$, $\bar b = \sum_{\text{rows}} \bar Y$ and
# $\overline{\mathrm{cols}} = \bar Y W_2$; each entry of $x$ appears in up to 9 rows of
# `cols`, so $\bar x$ adds those 9 contributions back (the adjoint of im2col, which
# `minflow.nn.conv2d` computes as a convolution of $\bar y$ with the flipped kernel).

# %%
conv = Conv2d(2, 3, kernel_size=3, dtype=np.float64, rng=make_rng(2))
x_conv = rng.standard_normal((2, 2, 5, 5))
cols = im2col(x_conv, 3)  # (N*H*W, 9*C) = (50, 18)
w_rows = conv.params["W"].transpose(0, 2, 3, 1).reshape(3, -1)  # (O, 9*C), columns ordered like cols
y_mine = (cols @ w_rows.T + conv.params["b"]).reshape(2, 5, 5, 3).transpose(0, 3, 1, 2)
conv_diff = np.abs(y_mine - conv.forward(x_conv)).max()
print(f"cols {cols.shape}; im2col product vs Conv2d.forward: {conv_diff:.1e}")
conv_report = check_module_gradients(conv, x_conv)
print(conv_report)
assert conv_diff < 1e-12 and conv_report.ok

# %% [markdown]
# **Gather or scatter.** im2col copies $9C$ numbers per output pixel before
# multiplying. The same sum can be taken the other way round: multiply every
# input pixel by every tap of the kernel first (one product giving $9O$ numbers
# per pixel), then add each tap's image into the output, shifted by the tap's
# offset; what shifts past the border is dropped, which is the zero padding.
# A conditioner's last convolution maps 32 channels to 2, so scattering copies
# $9 \cdot 2$ numbers per pixel where gathering copies $9 \cdot 32$: `Conv2d`
# copies the side with fewer channels, in the forward pass and in the backward.

# %%
x_wide = rng.standard_normal((2, 8, 5, 5))  # C = 8 channels in
w_narrow = rng.standard_normal((2, 8, 3, 3))  # O = 2 channels out
cols_wide = im2col(x_wide, 3)  # (N*H*W, 9*C) = (50, 72)
y_gather = (cols_wide @ w_narrow.transpose(0, 2, 3, 1).reshape(2, -1).T).reshape(2, 5, 5, 2).transpose(0, 3, 1, 2)
y_scatter = scatter_conv(x_wide, w_narrow, out=np.empty((2, 2, 5, 5)))  # taps: (9*O, N*H*W) = (18, 50)
scatter_diff = np.abs(y_gather - y_scatter).max()
print(f"gather copies {cols_wide.size} numbers, scatter {9 * 2 * 50}; largest difference {scatter_diff:.1e}")
assert scatter_diff < 1e-12

# %% [markdown]
# ## 4. Squeeze and factor-out: the multi-scale architecture
#
# **Squeeze** trades space for channels: each 2×2 block of pixels becomes 4 channels
# of one pixel, $(N, C, H, W) \to (N, 4C, H/2, W/2)$, with pixel $(\delta_i, \delta_j)$ of a block
# going to channel $4c + 2\delta_i + \delta_j$. It only moves entries: its Jacobian is a
# permutation matrix, so $\log|\det| = 0$, and its backward is the inverse
# permutation (unsqueeze) applied to $\bar z$. After a squeeze, channel masks can
# split what used to be neighbouring pixels.
#
# **Factor-out.** After some layers at a scale, half of the channels go straight to
# the base distribution and only the other half continue through more layers:
# $z_{:, :k} = \mathrm{inner}(x_{:, :k})$, $z_{:, k:} = x_{:, k:}$. The Jacobian is block
# diagonal (the inner flow's and an identity), so its log-det is the inner flow's.
# Written this way the whole model is one bijection from the image to one latent
# tensor of the same size, and the base is $\mathcal N(0, I)$ over all of it.

# %%
x_sq = np.arange(16.0).reshape(1, 1, 4, 4)
print("x (one channel, 4x4):\n", x_sq[0, 0])
print("squeeze(x): 4 channels of 2x2\n", squeeze(x_sq)[0])
sq_logdet = Squeeze().forward(x_sq)[1]
print("log-det:", sq_logdet, " brute force:", brute_force_logdet(Squeeze().forward, x_sq))

# %% [markdown]
# ## 5. D8: the reference model
#
# `minflow.zoo.d8.d8()` builds the reference model of [`docs/reference-problems.md`](../docs/reference-problems.md):
#
# | layers | shape |
# |---|---|
# | logit ($a = 0.05$) | 1×8×8 |
# | 3 affine couplings, checkerboard parities 0, 1, 0 | 1×8×8 |
# | squeeze | 4×4×4 |
# | 3 affine couplings, channel masks (first, second, first half) | 4×4×4 |
# | factor out channels 2:4; on the other 2: 4 checkerboard couplings | 2×4×4 |
#
# Every coupling's conditioner is a ResNet (3×3 conv to 32 channels, 2 residual
# blocks, 3×3 conv out, initialised to zero), with $s = \tanh(\tilde s)$. Before
# training, two checks of the whole composition on a 4×4 variant of the same
# architecture (its 16×16 Jacobian is cheap to build by brute force): the model's
# log-det against `slogdet`, and a gradient check of a sample of its parameters.

# %%
model = d8(seed=0)
n_params = sum(prm.size for prm in model.params.values())
print(f"D8: {len(model.flow)} top-level layers, {n_params:,} parameters (reference: {D8_PARAMETERS:,})")

tiny = d8(size=4, hidden=4, n_blocks=1, dtype=np.float64, seed=1)
for prm in tiny.params.values():
    prm[...] = 0.2 * rng.standard_normal(prm.shape)
v_tiny = rng.uniform(0.05, 0.95, size=(3, 1, 4, 4))
tiny_logdet_err = np.abs(tiny.flow.forward(v_tiny)[1] - brute_force_logdet(tiny.flow.forward, v_tiny)).max()
print(f"tiny D8: log-det vs slogdet of the 16x16 Jacobian: {tiny_logdet_err:.1e}")
tiny_report = gradcheck(tiny.flow, v_tiny, directions=("forward",), max_entries=4 if FAST else 20, verbose=False)
print(
    f"tiny D8: gradient check of input and {len(tiny_report.rows) - 4} parameter arrays "
    f"(a random sample of entries each): ok = {tiny_report.ok}, worst error {tiny_report.max_error:.1e}"
)
assert n_params == D8_PARAMETERS and tiny_logdet_err < 1e-6 and tiny_report.ok

# %% [markdown]
# ## 6. Training D8
#
# The D8 recipe: batch 64, Adam at $10^{-3}$ with coupled L2 weight decay $5\cdot10^{-5}$,
# fresh dequantisation noise for every batch, batches reshuffled every epoch. The
# loss is the mean of $-\log q(v)$ in nats per image; dividing by $64\ln 2$ and adding
# $\log_2 17$ turns it into bits per dimension. `python -m minflow digits` runs the
# same recipe from the command line with checkpoints and figures.

# %%
train_images = train[:TRAIN_SIZE]
test_images = test[:N_TEST_EVAL]
optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)
rng_train = make_rng(0)  # shuffling and dequantisation noise
bpd_before = evaluate_bpd(model, test_images, n_draws=EVAL_DRAWS)["bpd"]
curve = {"epoch": [0], "train": [float("nan")], "test": [bpd_before]}
start = time.perf_counter()
for epoch in range(1, N_EPOCHS + 1):
    order = rng_train.permutation(len(train_images))
    losses = []
    for first in range(0, len(order), 64):
        x_batch = train_images[order[first : first + 64]]
        v_batch, _ = dequantize(x_batch, N_LEVELS, rng_train, np.float32)  # fresh noise, every batch
        model.zero_grads()
        losses.append(float(model.nll_and_backward(v_batch)))  # mean -log q(v), nats per image
        optimizer.step()
    train_bpd = (np.mean(losses) + 64 * math.log(N_LEVELS)) / (64 * math.log(2))
    test_bpd = evaluate_bpd(model, test_images, n_draws=EVAL_DRAWS)["bpd"]
    curve["epoch"].append(epoch)
    curve["train"].append(train_bpd)
    curve["test"].append(test_bpd)
    if epoch % 5 == 0 or epoch == N_EPOCHS:
        print(
            f"epoch {epoch:3d}: train {train_bpd:.3f} bpd, test {test_bpd:.3f} bpd "
            f"({time.perf_counter() - start:.0f} s)"
        )
final = evaluate_bpd(model, test_images, n_draws=EVAL_DRAWS)
print(f"\ntest bpd {final['bpd']:.3f} (importance-weighted over the draws: {final['iw_bpd']:.3f})")

# %% [markdown]
# How does that compare? Baselines on the same split ([`docs/reference-problems.md`](../docs/reference-problems.md)): a
# uniform model, a separate categorical distribution per pixel (Laplace smoothing),
# and a full-covariance Gaussian through the same preprocessing; and D8 written in
# PyTorch.

# %%
REFERENCE = [
    ("uniform", 4.087),
    ("per-pixel categorical", 2.420),
    ("full-covariance Gaussian", 2.444),
    ("D8 in PyTorch, 10 epochs", 2.11),
    ("D8 in PyTorch, 20 epochs", 2.05),
]
for name, bpd in REFERENCE:
    print(f"{name:<28} {bpd:6.3f} bpd")
print(
    f"{'D8 here, ' + str(N_EPOCHS) + ' epochs':<28} {final['bpd']:6.3f} bpd"
    + ("   (fast mode: a few steps on a few images)" if FAST else "")
)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
axes[0].plot(curve["epoch"][1:], curve["train"][1:], "o-", label="train (one draw, moving weights)")
axes[0].plot(curve["epoch"], curve["test"], "s-", label="test")
axes[0].axhline(2.420, color="0.5", ls=":", label="per-pixel categorical")
axes[0].set(xlabel="epoch", ylabel="bits per dimension", ylim=(1.5, 4.5), title="D8 on the digits")
axes[0].legend(fontsize=8)
for ax, temperature in zip(axes[1:], (1.0, 0.7)):
    samples = np.clip(model.sample(36, rng=make_rng(3), temperature=temperature), 0, 1)  # (36, 1, 8, 8) in [0, 1]
    padded = np.pad(samples[:, 0], ((0, 0), (1, 1), (1, 1)))  # a blank border: digits fill their 8x8 box
    grid = padded.reshape(6, 6, 10, 10).transpose(0, 2, 1, 3).reshape(60, 60)  # 6 x 6 tiles
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    ax.set(title=f"samples, temperature {temperature}", xticks=[], yticks=[])
fig.tight_layout()
fig.savefig(f"{FIGDIR}/06_d8.png")
plt.show()

# %% [markdown]
# Samples at temperature $T < 1$ (latents drawn from $\mathcal N(0, T^2 I)$) look
# cleaner; lesson 07 explains why and what it costs.
#
# ## Check yourself

# %%
rows = [
    ("logit inline vs minflow", logit_diff, "< 1e-10", logit_diff < 1e-10),
    ("image coupling gradcheck", coupling_report.max_error, "< 1e-6", coupling_report.ok),
    ("im2col product vs Conv2d", conv_diff, "< 1e-12", conv_diff < 1e-12),
    ("Conv2d gradcheck", conv_report.max_error, "< 1e-6", conv_report.ok),
    ("squeeze log-det", float(np.abs(sq_logdet).max()), "= 0", np.all(sq_logdet == 0)),
    ("tiny D8 log-det vs slogdet", tiny_logdet_err, "< 1e-6", tiny_logdet_err < 1e-6),
    ("D8 parameters", n_params, f"= {D8_PARAMETERS}", n_params == D8_PARAMETERS),
    ("test bpd went down", bpd_before - final["bpd"], "> 0", final["bpd"] < bpd_before),
]
if not FAST:
    rows.append(("test bpd beats per-pixel categorical", final["bpd"], "< 2.42", final["bpd"] < 2.42))
print(f"{'claim':<38} {'value':>10}  {'wanted':>9}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<38} {value:10.4g}  {wanted:>9}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - Dequantisation $v = (x + u)/k$ turns a density on $[0,1)^D$ into a lower bound on
#   the discrete likelihood, $\log P(x) \ge \mathbb E_u[\log q(v)] - D\ln k$; bits per
#   dimension are $-(\log q(v) - D\ln k)/(D\ln 2)$, and 4.087 is "no model" for 17 levels.
# - The logit transform maps $[0,1]$ to $\mathbb R$; its log-det
#   $\sum[\ln(1 - 2a) - \ln p - \ln(1-p)]$ is part of the model's likelihood.
# - Image couplings use checkerboard or channel masks and a convolutional
#   conditioner; the math is lesson 02's, with the masks as elementwise products.
# - Squeeze (a permutation) and factor-out (block-diagonal) have cheap log-dets (0
#   and the inner flow's); together they make the multi-scale model one bijection.
# - D8, 384,962 parameters, beats the per-pixel and Gaussian baselines within a few epochs.
#
# **Read more.** Dinh, Sohl-Dickstein & Bengio (2016), *Density estimation using Real
# NVP*, arXiv:1605.08803, sections 3.4-3.6 and 4.1; Theis, van den Oord & Bethge (2016),
# *A note on the evaluation of generative models*, arXiv:1511.01844 (dequantisation);
# Ho, Chen, Srinivas, Duan & Abbeel (2019), *Flow++*, arXiv:1902.00275 (variational
# dequantisation); Alpaydin & Kaynak (1998), UCI *Optical Recognition of Handwritten
# Digits* (the data, CC BY 4.0).
#
# ## Exercises
#
# The checks are defined in the next cell; leave an answer at `None` to skip it.
# Solutions are in the appendix at the end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    truth = -(60 - 64 * math.log(17)) / (64 * math.log(2))
    if abs(value - (-60 / (64 * math.log(2)))) < 1e-3:
        raise AssertionError("You left out the bin width: a density on [0, 1)^64 needs -D ln k to become a mass.")
    if abs(value - (-(60 - 64 * math.log(17)) / 64)) < 1e-3:
        raise AssertionError("That is in nats per dimension; divide by ln 2 for bits.")
    if abs(value - (-(60 + 64 * math.log(17)) / (64 * math.log(2)))) < 1e-3:
        raise AssertionError("Check the sign of the D ln k term: log P(x) >= log q(v) - D ln k.")
    assert abs(value - truth) < 1e-3, f"Not yet (you gave {value:.4f})."
    print(f"Exercise 1: correct! {truth:.3f} bits per dimension.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a tuple (channel, i, j)).")
        return
    got = tuple(int(v) for v in answer)
    x = np.zeros((1, 1, 8, 8))
    x[0, 0, 3, 2] = 1.0
    truth = tuple(int(v) for v in np.argwhere(squeeze(x)[0] == 1.0)[0])
    if got == (1, 1, 1):
        raise AssertionError("Rows come first: the channel is 2 * di + dj, with di the offset in the ROW index.")
    assert len(got) == 3 and got == truth, (
        f"Not yet (you gave {got}). Write 3 = 2 i + di and 2 = 2 j + dj; the channel is 2 di + dj."
    )
    print(f"Exercise 2: correct! x[0, 0, 3, 2] lands in channel {truth[0]} at pixel ({truth[1]}, {truth[2]}).")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    v = np.random.default_rng(4).uniform(0, 1, size=(5, 1, 4, 4))
    for alpha in (0.05, 0.2):
        truth = Logit(alpha).forward(v)[1]
        got = np.asarray(answer(v, alpha), dtype=float)
        assert got.shape == (5,), f"Return one log-det per image, shape (5,); got {got.shape}."
        p = alpha + (1 - 2 * alpha) * v
        no_slope = -(np.log(p) + np.log1p(-p)).reshape(5, -1).sum(axis=1)
        if np.allclose(got, no_slope, atol=1e-8):
            raise AssertionError("You left out the slope of p = a + (1 - 2a) v: add 16 * ln(1 - 2a) per image.")
        if np.allclose(got, -truth, atol=1e-8):
            raise AssertionError("Sign: the logit stretches (0, 1) onto the real line, so its log-det is positive.")
        assert np.allclose(got, truth, atol=1e-8), f"Not yet (checked against Logit({alpha}))."
    print("Exercise 3: correct! sum over pixels of ln(1 - 2a) - ln p - ln(1 - p).")


# %% [markdown]
# ### Exercise 1: from nats to bits per dimension
#
# A model gives $\log q(v) = 60$ nats for one dequantised 8×8 digit (17 levels). What is
# that image's bits per dimension?

# %%
answer_1 = None  # a number
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: where does a pixel go when you squeeze?
#
# For an image of shape $(1, 1, 8, 8)$, after `squeeze`, where does the entry
# `x[0, 0, 3, 2]` end up? Answer with a tuple `(channel, i, j)`; work it out from the
# rule in section 4 before trying it in code.

# %%
answer_2 = None  # a tuple (channel, i, j)
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: the logit's log-det
#
# Write `logit_logdet(v, a)` returning the log-det of the logit transform per image,
# shape $(N,)$, for `v` of shape $(N, C, H, W)$.

# %%
answer_3 = None  # your function (v, a) -> (N,)
check_exercise_3(answer_3)

# %% [markdown]
# ## Appendix: solutions
#
# Try each exercise before you look here. The explanations are folded: click
# **Solution k** to open one. The code cells below define each `solution_k` and run
# its check; in JupyterLab their code is collapsed too (click the `...` to show it).
#
# <details><summary><b>Solutions 1-3</b> (click to open)</summary>
#
# **1.** $\mathrm{bpd} = -(60 - 64\ln 17)/(64\ln 2) \approx 2.735$.
# **2.** $3 = 2\cdot1 + 1$ and $2 = 2\cdot1 + 0$: block $(1, 1)$, offsets $(\delta_i, \delta_j) = (1, 0)$,
# channel $2\cdot1 + 0 = 2$. **3.** The formula of section 2, summed per image.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_1 = -(60 - 64 * math.log(17)) / (64 * math.log(2))
check_exercise_1(solution_1)

solution_2 = (2, 1, 1)
check_exercise_2(solution_2)


def solution_3(v, a):
    p = a + (1 - 2 * a) * v
    return (math.log(1 - 2 * a) - np.log(p) - np.log1p(-p)).reshape(len(v), -1).sum(axis=1)


check_exercise_3(solution_3)
