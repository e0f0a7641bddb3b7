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
# # 12 · Flows in 2025: TarFlow
#
# In 2025 normalizing flows came back as image generators. TarFlow (Zhai et al.,
# *Normalizing Flows are Capable Generative Models*, ICML 2025, arXiv:2412.06329)
# was the first flow under 3 bits/dim on ImageNet 64×64, and STARFlow (Gu et al.,
# 2025, arXiv:2506.06276) scaled the idea to text-to-image. The engine is old:
# MAF's affine autoregressive layer (Papamakarios et al. 2017), with a causal
# Transformer as the conditioner, over image patches, the token order reversed
# between blocks. This lesson takes it apart with minflow's hand-written version.
#
# **You will learn to**
# 1. write a TarFlow block as MAF over tokens, and see its triangular Jacobian;
# 2. explain the shift by one, and watch a conditioner that sees its own token "exploit the log-det";
# 3. measure what exact sampling costs: T sequential passes per block, against RealNVP's one;
# 4. train with Gaussian noise and denoise samples with one step along the model's own score (Tweedie);
# 5. sample by Jacobi fixed-point iteration instead of token by token (exercise).
#
# **Time:** about 45 minutes. **Prerequisites:** lessons 02, 03 and 06.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.backend import make_rng
from minflow.data.digits import N_LEVELS, load_digits
from minflow.distributions import StandardNormal
from minflow.flows import Flow, TarFlowBlock
from minflow.model import FlowModel
from minflow.nn import CausalTransformer
from minflow.optim import Adam
from minflow.train import fit_epochs, fit_samples, new_epoch_history
from minflow.viz.images import show_images
from minflow.zoo import d8, evaluate_bpd, tarflow_digits
from minflow.zoo.d8 import D8_ALPHA
from minflow.zoo.noise import LogitNoise, sample_denoised

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_STEPS_TOY = 150 if FAST else 600  # steps of the shift experiment (section 2)
N_EPOCHS = 1 if FAST else 8  # digits epochs of the noise-augmented TarFlow (section 4)
TRAIN_SIZE = 256 if FAST else None  # training digits (None: all 1,497)
DIM = 32 if FAST else 64  # Transformer width of that TarFlow (64: zoo.tarflow_digits)
SIGMA = 0.3  # noise in logit space (section 4)

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
rng = np.random.default_rng(0)
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)

# %% [markdown]
# ## 1. From MAF to TarFlow
#
# Cut the data into tokens $x_1, \dots, x_T$ (for an 8×8 digit: 16 patches of 2×2
# pixels, each token $D = 4$ values). One TarFlow block is MAF's affine
# autoregressive layer over the tokens:
#
# $$z_t = (x_t - \mu_t)\, e^{-\alpha_t}, \qquad (\mu_t, \alpha_t) = \mathrm{net}(s, x_1, \dots, x_{t-1})_t,$$
#
# where the conditioner is a causal Transformer (token $t$ attends to tokens $\le t$
# of its input) fed the sequence **shifted by one**: a learned start token $s$, then
# $x_1..x_{T-1}$. So $\mu_t, \alpha_t$ depend on $x_{<t}$ only, $\partial z_t/\partial x_{t'} = 0$
# for $t' > t$, and the Jacobian is block lower triangular with diagonal blocks
# $\mathrm{diag}(e^{-\alpha_t})$:
#
# $$\log\left|\det\frac{\partial z}{\partial x}\right| = -\sum_t\sum_d \alpha_{t,d}.$$
#
# MAF used a masked MLP (MADE) for the conditioner; a Transformer shares weights
# across positions and scales with attention. Stacking blocks with the order
# reversed in between lets every token condition on every other one somewhere.
# Let's build a small block, randomise its weights (a fresh block is the identity:
# its output projection starts at zero), and look at its Jacobian.


# %%
def jacobian(fn, x, h=1e-6):
    """dz/dx of one sample by central differences: fn maps (1, T, D) to (T, D); x (T, D) -> (T*D, T*D)."""
    flat = x.reshape(-1)
    cols = []
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = h
        plus = fn((flat + e).reshape(1, *x.shape)).reshape(-1)
        minus = fn((flat - e).reshape(1, *x.shape)).reshape(-1)
        cols.append((plus - minus) / (2 * h))
    return np.stack(cols, axis=1)


def randomized(block, scale=0.3, seed=0):
    g = np.random.default_rng(seed)
    for p in block.params.values():
        p[...] = scale * g.standard_normal(p.shape)
    return block


T, D = 6, 2
block = randomized(
    TarFlowBlock(
        CausalTransformer(D, 2 * D, T, hidden=8, depth=1, n_heads=2, mlp_ratio=2, dtype=np.float64, rng=make_rng(0))
    )
)
x = rng.standard_normal((1, T, D))
J = jacobian(lambda v: block.forward(v)[0][0], x[0])
_, logdet = block.forward(x)
print("entries above the diagonal blocks:", np.abs(np.triu(J, k=D)).max())
print(f"log|det J| brute force {np.linalg.slogdet(J)[1]:.10f}  formula -sum(alpha) {logdet[0]:.10f}")
assert np.abs(np.triu(J, k=D)).max() < 1e-8
assert abs(np.linalg.slogdet(J)[1] - logdet[0]) < 1e-7

# %% [markdown]
# ## 2. The shift by one, and what happens without it
#
# Drop the shift, and the conditioner reads $x_1..x_t$: $\mu_t$ and $\alpha_t$ now
# depend on $x_t$ itself. The formula $-\sum\alpha$ is still cheap to compute, but
# it is no longer the log-det: the diagonal blocks of the Jacobian gain the
# conditioner's own derivatives. A known failure of re-implementations is exactly
# this off-by-one. It does not crash; it trains, and the loss looks wonderful,
# because maximum likelihood with a wrong log-det is free to "exploit" it: set
# $\mu_t \approx x_t$ (so $z \approx 0$, the peak of the Gaussian) and push
# $\alpha_t$ to its bound, and the claimed $\log q$ grows without any density to back it.
#
# `LeakyBlock` below is `TarFlowBlock` with the shift removed (the input of the
# conditioner is $x$ itself). We train it and the honest block on the same
# correlated Gaussian data, whose true entropy $H$ we know: no density can have
# a mean NLL below $H$ on its samples.


# %%
class LeakyBlock(TarFlowBlock):
    """TarFlowBlock whose conditioner sees its own token: u = x instead of (s, x_1..x_{T-1})."""

    def _shift(self, x):
        return x

    def _shift_backward(self, du):
        return du


T_TOY = 4
cov = 0.5 * np.eye(T_TOY) + 0.5  # unit variances, correlation 0.5
chol = np.linalg.cholesky(cov)
entropy = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]  # H of N(0, cov), nats


def sample_toy(n, g):
    return (g.standard_normal((n, T_TOY)) @ chol.T)[:, :, None]  # (n, T, 1): tokens of one value


def toy_model(kind):
    net = CausalTransformer(1, 2, T_TOY, hidden=16, depth=1, n_heads=2, mlp_ratio=2, dtype=np.float64, rng=make_rng(0))
    blk = kind(net)  # the conditioner: D = 1 value per token in, mu and a out
    return FlowModel(Flow([blk]), StandardNormal((T_TOY, 1)))


held_out = sample_toy(500, np.random.default_rng(1))
results = {}
for name, kind in [("with the shift", TarFlowBlock), ("without the shift", LeakyBlock)]:
    model = toy_model(kind)
    fit_samples(model, sample_toy, N_STEPS_TOY, batch_size=256, lr=3e-3, progress=False)
    claimed = float(model.nll(held_out))
    forward_one = lambda v, m=model: m.flow.forward(v)[0][0]
    jac_logdet = [np.linalg.slogdet(jacobian(forward_one, s))[1] for s in held_out]
    z, _ = model.flow.forward(held_out)
    true_nll = float(-(model.base.log_prob(z) + np.array(jac_logdet)).mean())
    results[name] = (claimed, true_nll)
    print(
        f"{name:18s}: claimed NLL {claimed:7.3f}   NLL with the true log-det {true_nll:7.3f}   (entropy H = {entropy:.3f})"
    )

assert results["with the shift"][0] > entropy - 0.1  # an honest density stays near H, above it but for sampling error
assert results["without the shift"][0] < entropy - 1.0  # the leaky one claims the impossible
assert abs(results["with the shift"][0] - results["with the shift"][1]) < 1e-4  # formula = true log-det

# %% [markdown]
# The honest block ends close to $H$ from above, and its formula agrees with the
# brute-force log-det. The leaky block's *claimed* NLL is far below $H$, which no
# normalised density can do; with the true log-det of the map it learned, its NLL is
# bad: it was optimising the wrong number. This is why the tests of
# `flows/tarflow.py` check the log-det against a brute-force Jacobian that must be
# triangular, and why that test fails when the shift is removed.

# %% [markdown]
# ## 3. The price of exactness: sampling is sequential
#
# The forward pass (density, training) runs all tokens at once: one Transformer
# pass per block. The inverse cannot: $x_t = z_t e^{\alpha_t} + \mu_t$ needs
# $x_{<t}$ first, so each block takes $T$ conditioner steps, one token at a time
# (the key/value cache keeps each step's cost to one token's attention). A
# `tarflow_digits()` model (6 blocks of 16 tokens) makes 96 sequential steps per
# sample batch; D8, the multi-scale RealNVP, inverts every coupling in one pass.


# %%
def best_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


tar, tar_pixels, realnvp = tarflow_digits(), tarflow_digits(patch=1), d8()
batch = np.clip(realnvp.sample(64, rng=make_rng(1)), 0, 1)  # any 64 images in [0, 1]
times = {
    "D8: sample": best_time(lambda: realnvp.sample(64, rng=make_rng(0))),
    "TarFlow 2x2: density": best_time(lambda: tar.log_prob(batch)),
    "TarFlow 2x2: sample": best_time(lambda: tar.sample(64, rng=make_rng(0))),
    "TarFlow 1x1: density": best_time(lambda: tar_pixels.log_prob(batch)),
    "TarFlow 1x1: sample": best_time(lambda: tar_pixels.sample(64, rng=make_rng(0))),
}
for k, v in times.items():
    print(f"{k:22s} {1000 * v:7.1f} ms for 64 images")
ratio_2, ratio_1 = (times[f"TarFlow {p}: sample"] / times[f"TarFlow {p}: density"] for p in ("2x2", "1x1"))
print(f"TarFlow sample / density pass: {ratio_2:.1f}x with 16 tokens, {ratio_1:.1f}x with 64 tokens")
print(f"TarFlow 2x2 sample / D8 sample: {times['TarFlow 2x2: sample'] / times['D8: sample']:.1f}x")

# count the sequential conditioner steps of one sampling call
n_steps = [0]
for layer in tar.flow.layers:
    if isinstance(layer, TarFlowBlock):
        layer.net.step = lambda u, step=layer.net.step: (n_steps.__setitem__(0, n_steps[0] + 1), step(u))[1]
tar.sample(64, rng=make_rng(0))
print(f"sequential conditioner steps per sampling call: {n_steps[0]} (6 blocks x 16 tokens); D8: one pass")
assert n_steps[0] == 6 * 16

# %% [markdown]
# At this size the sequence costs little: each of the 96 steps runs the batch's
# one token through a one-layer Transformer of width 64, so sampling takes only
# about 1.3 to 1.5 times the density pass and about D8's time (on one core;
# `benchmarks/tarflow_digits.py` recorded 0.074 s against D8's 0.053 s for 64
# samples). The cost that matters is latency: the steps cannot overlap, and their
# number grows with the tokens (384 with one pixel per token) times the blocks.
# ImageNet-size TarFlows have hundreds of tokens per block and deep Transformers,
# and there the sequence, not the arithmetic, sets the sampling time. The exercise
# at the end tries Jacobi iteration, which trades the sequence for parallel passes.

# %% [markdown]
# ## 4. Noise augmentation and one step of denoising
#
# TarFlow's recipe (Zhai et al. 2025, sections 2.3-2.4): train on data with
# Gaussian noise, $y = x + \sigma\varepsilon$, wider than the dequantisation noise,
# which smooths the density around the data; then clean the samples with one step of
# **Tweedie's formula**, which for Gaussian noise gives the posterior mean of the
# clean data from the score of the noisy density:
#
# $$\hat x = \mathbb E[x \mid y] = y + \sigma^2\,\nabla_y \log p(y).$$
#
# A flow has the score for free: it is the input gradient of $\log q$, which
# minflow's hand-written backward already returns (`log_prob_backward`). One check of
# the formula where everything is known: $x \sim \mathcal N(0, 1)$ gives
# $y \sim \mathcal N(0, 1 + \sigma^2)$, score $-y/(1+\sigma^2)$, and $\hat x = y/(1+\sigma^2)$,
# the familiar shrinkage.
#
# Where to add the noise: minflow's digit models start with a logit transform,
# which needs pixels in $[0, 1]$; so the noise goes **after** the logit,
# $y = \mathrm{logit}(\cdot) + \sigma\varepsilon$, where every value is valid, and
# Tweedie's step is taken there (`minflow/zoo/noise.py`). Test bits/dim are still
# measured on clean dequantised digits, comparable with D8.

# %%
y_demo = np.linspace(-3, 3, 7)
tweedie = y_demo + SIGMA**2 * (-y_demo / (1 + SIGMA**2))
assert np.allclose(tweedie, y_demo / (1 + SIGMA**2))

train_images = load_digits("train")[:TRAIN_SIZE]
test_images = load_digits("test")
noisy_model = tarflow_digits(hidden=DIM, seed=0)
optimizer = Adam(noisy_model.params, noisy_model.grads, lr=1e-3)
history, state = new_epoch_history()
fit_epochs(
    noisy_model,
    optimizer,
    train_images,
    N_EPOCHS,
    np.random.default_rng(1),
    64,
    N_LEVELS,
    lambda images: evaluate_bpd(noisy_model, images, N_LEVELS, 1, 0),
    test_images[:100],
    history=history,
    state=state,
    progress=False,
    augment=LogitNoise(D8_ALPHA, SIGMA),
)
print(f"{N_EPOCHS} epochs, {state['seconds']:.0f} s; clean test bpd {history['test_bpd'][-1]:.3f}")

raw, clean = (s[:, 0] for s in sample_denoised(noisy_model, 36, SIGMA, rng=make_rng(0)))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
show_images(axes[0], raw, 6, f"samples (noise sigma {SIGMA})")
show_images(axes[1], clean, 6, "after one Tweedie step")
show_images(axes[2], 0.5 + 10 * (clean - raw), 6, "the step, times 10 (grey: 0)")
fig.tight_layout()
fig.savefig(os.path.join(FIGDIR, "12_denoising.png"))
plt.show()
print(f"mean |step| {np.abs(clean - raw).mean():.3f} (pixel units)")
assert np.abs(clean - raw).max() > 0  # the step moves the samples

# %% [markdown]
# The step sharpens the samples: it removes the part of each pixel that looks like
# noise under the model. At the scale of this lesson the models are small and
# trained for minutes; `benchmarks/tarflow_noise.py` trains the full
# `tarflow_digits` for 20 epochs at several $\sigma$ (`python -m minflow tarflow
# --noise 0.3` does one) and puts the grids side by side in `figures/tarflow_noise.png`.
# In full mode this lesson trains 8 epochs on all digits (about half a minute on
# one core); the full-scale number for 20 epochs without noise is 2.253 test
# bits/dim (D8: 2.036). Trained for 100 epochs with TarFlow's recipe (a warmup
# and cosine decay of the learning rate, AdamW, a moving average of the weights,
# batches of 16; the README's TarFlow table) it reaches 2.028 to 2.032 over three
# seeds, level with D8's best (2.029).

# %% [markdown]
# ## Summary
#
# - A TarFlow block is MAF over tokens with a causal Transformer conditioner:
#   $z_t = (x_t - \mu_t)e^{-\alpha_t}$, log-det $-\sum\alpha$, order reversed between blocks.
# - The shift by one makes the Jacobian triangular. Without it the formula is not
#   the log-det, and training exploits it: a claimed NLL below the data's entropy.
# - Density evaluation is one parallel pass per block; exact sampling is $T$
#   sequential steps per block (96 for `tarflow_digits`), against one pass for RealNVP.
# - Gaussian noise augmentation plus one Tweedie step, $\hat x = y + \sigma^2\nabla\log p(y)$,
#   uses the flow's own input gradient as the score.
#
# **Read more.** Zhai et al. (2025), arXiv:2412.06329 (TarFlow); Gu et al. (2025),
# arXiv:2506.06276 (STARFlow); Papamakarios, Pavlakou & Murray (2017), arXiv:1705.07057
# (MAF); Efron (2011), *Tweedie's formula and selection bias*; Song et al. (2021),
# arXiv:2002.03629 (Jacobi iterations for autoregressive sampling).
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
    value = int(answer)
    if value == 16:
        raise AssertionError("That is one block's steps; every one of the blocks inverts token by token.")
    if value == 6:
        raise AssertionError("That is one step per block, as in RealNVP; a TarFlow block needs one per token.")
    assert value == 8 * 64, f"Not yet (you gave {value})."
    print("Exercise 1: correct! 8 blocks x 64 tokens = 512 sequential conditioner steps.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    if abs(value - 1.5) < 1e-9:
        raise AssertionError("That is y itself: the step along the score is missing.")
    if abs(value + 1.5) < 1e-9:
        raise AssertionError("The step is sigma^2 times the score, not sigma times it.")
    assert abs(value) < 1e-9, f"Not yet (you gave {value})."
    print("Exercise 2: correct! p(y) = N(0, sigma^2), so y + sigma^2 (-y / sigma^2) = 0: the point itself.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    blk = randomized(
        TarFlowBlock(
            CausalTransformer(2, 4, 5, hidden=8, depth=1, n_heads=2, mlp_ratio=2, dtype=np.float64, rng=make_rng(0))
        ),
        seed=3,
    )
    z = np.random.default_rng(5).standard_normal((3, 5, 2))
    exact, _ = blk.inverse(z)
    got = np.asarray(answer(blk, z, 5))
    assert got.shape == z.shape, f"Return x of the shape of z, {z.shape}; got {got.shape}."
    err = np.abs(got - exact).max()
    assert err < 1e-10, (
        f"After T = 5 iterations x should equal the sequential inverse (max error {err:.2e}). Each iteration "
        "computes mu, alpha from the current x and sets x = z * exp(alpha) + mu for all tokens at once."
    )
    early = np.abs(np.asarray(answer(blk, z, 2)) - exact)
    assert early[:, :2].max() < 1e-10, "After k iterations the first k tokens should already be exact."
    print("Exercise 3: correct! k Jacobi iterations make the first k tokens exact; T of them, all.")


# %% [markdown]
# ### Exercise 1: sequential steps
#
# A TarFlow on the 8×8 digits with one pixel per token and 8 blocks: how many
# sequential conditioner steps does drawing one batch of samples take?

# %%
answer_1 = None  # a whole number
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: Tweedie on a point mass
#
# All data sit at $x = 0$, and $y = x + \sigma\varepsilon$ with $\sigma = 0.5$. What does one
# denoising step $\hat x = y + \sigma^2\nabla_y\log p(y)$ return for $y = 1.5$?

# %%
answer_2 = None  # a number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: Jacobi sampling
#
# The inverse $x_t = z_t e^{\alpha_t(x_{<t})} + \mu_t(x_{<t})$ is a fixed point
# $x = g(x)$. Jacobi iteration updates all tokens at once from the previous guess:
# $x^{(k+1)} = z\,e^{\alpha(x^{(k)})} + \mu(x^{(k)})$, starting from $x^{(0)} = 0$.
# Each iteration is one parallel conditioner pass; because token $t$ reads only
# tokens before it, iteration $k$ makes token $k$ exact, so $T$ iterations give the
# exact inverse (often fewer are nearly exact). Write `jacobi_inverse(block, z, n_iter)`;
# `mu, alpha, _ = block._conditioner(x)` gives the conditioner's outputs for a guess `x`.

# %%
answer_3 = None  # your function (block, z, n_iter) -> x
check_exercise_3(answer_3)

# %% [markdown]
# ## Appendix: solutions
#
# Try each exercise before you look here. The explanations are folded: click
# **Solutions 1-3** to open them. The code cells below define each `solution_k` and run
# its check; in JupyterLab their code is collapsed too (click the `...` to show it).
#
# <details><summary><b>Solutions 1-3</b> (click to open)</summary>
#
# **1.** 64 tokens per block, each block in turn: $8 \cdot 64 = 512$.
# **2.** $p(y) = \mathcal N(0, \sigma^2)$, score $-y/\sigma^2$: $\hat x = y - y = 0$, the only clean value.
# **3.** Loop `n_iter` times: `mu, alpha, _ = block._conditioner(x)`; `x = z * exp(alpha) + mu`.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_1 = 8 * 64
check_exercise_1(solution_1)

solution_2 = 1.5 + 0.5**2 * (-1.5 / 0.5**2)
check_exercise_2(solution_2)


def solution_3(block, z, n_iter):
    x = np.zeros_like(z)
    for _ in range(n_iter):
        mu, alpha, _ = block._conditioner(x)  # all tokens at once, from the previous guess
        x = z * np.exp(alpha) + mu
    return x


check_exercise_3(solution_3)
