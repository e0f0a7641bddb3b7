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
# # 07 · Sampling and the latent space
#
# A trained flow is a two-way street: `forward` sends data to latents, `inverse`
# sends latents to data, both exactly. This lesson looks at what travels along it:
# samples and their exact log-densities, the temperature trick, perfect
# reconstructions, and the surprising geometry of a high-dimensional Gaussian,
# which decides how to interpolate between two images.
#
# **You will learn to**
# 1. draw samples with their exact log-density in one inverse pass, and check it against the forward pass;
# 2. say what sampling at temperature $T$ does, in latent and in data space, and when it equals $q^{1/T^2}$;
# 3. see that reconstructions are exact up to rounding, and what that does (not) say about the model;
# 4. explain the typical set: why Gaussian samples live on a shell of radius $\approx\sqrt D$, far from the mode;
# 5. interpolate in latent space along great circles (slerp) instead of straight lines.
#
# **Time:** about 45 minutes. **Prerequisites:** lessons 02 and 06.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.backend import make_rng
from minflow.data.digits import N_LEVELS, load_digits
from minflow.data.toy2d import get_toy
from minflow.flows.preprocessing import dequantize
from minflow.optim import Adam
from minflow.train import fit_samples
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_STEPS_2D = 200 if FAST else 5000  # R2 training steps on gaussians8
N_STEPS_D8 = 4 if FAST else 240  # D8 training steps (24 per epoch: 240 is 10 epochs)
N_SAMPLES = 2000 if FAST else 20_000  # 2D samples per temperature

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
rng = np.random.default_rng(0)
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)

# %% [markdown]
# ## 1. Samples come with their exact density
#
# To sample, draw $z_0 \sim \mathcal N(0, I)$ and run the inverse pass,
# $x = f^{-1}(z_0)$. The inverse pass also returns $\log|\det \partial x/\partial z_0|$,
# so the change of variables in the sampling direction gives the density of the
# sample for free:
#
# $$\log q(x) = \log\mathcal N(z_0) - \log\left|\det\frac{\partial x}{\partial z_0}\right|.$$
#
# `FlowModel.sample_and_log_prob(n)` returns both. Running the sample back through
# `forward` must give the same number (in float32, to about $10^{-5}$ relative). We
# use R2 trained on the eight Gaussians.

# %%
toy = get_toy("gaussians8")
model2d = realnvp_2d(seed=0)
fit_samples(model2d, toy.sample, N_STEPS_2D, batch_size=512, lr=1e-3, seed=1, progress=False)

x_s, log_q_sampling = model2d.sample_and_log_prob(5, rng=make_rng(2))
log_q_density = model2d.log_prob(x_s)
print("log q from the sampling pass:", log_q_sampling)
print("log q from the density pass: ", log_q_density)
sample_logq_err = np.abs(log_q_sampling - log_q_density).max()
assert sample_logq_err < 1e-3

# %% [markdown]
# ## 2. Temperature
#
# Sampling at temperature $T$ draws $z_0 \sim \mathcal N(0, T^2 I)$ instead. In latent
# space that is exactly a tempered density,
# $\mathcal N(z; 0, T^2 I) \propto \mathcal N(z; 0, I)^{1/T^2}$. In data space the sample density is
#
# $$q_T(x) = \mathcal N\big(f(x); 0, T^2 I\big)\,\big|\det J_f(x)\big|,$$
#
# while the tempered model density would be $q(x)^{1/T^2}/Z = \mathcal N(f(x); 0, I)^{1/T^2}\,|\det J_f(x)|^{1/T^2}/Z$.
# The two agree only where the log-det is constant, i.e. for a **volume-preserving**
# flow (NICE, exercise 2); otherwise temperature is a heuristic that concentrates
# samples where the *latent* density is high. Glow (section 5.3) uses $T = 0.7$ for its
# cleanest faces. Here, the eight Gaussians at three temperatures:

# %%
temperatures = (1.0, 0.75, 0.5)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.5), sharex=True, sharey=True)
spread, latent_std = {}, {}
for ax, temperature in zip(axes, temperatures):
    xs = model2d.sample(N_SAMPLES, rng=make_rng(3), temperature=temperature)
    spread[temperature] = float(model2d.nll(xs))  # mean -log q of the tempered samples under q
    latent_std[temperature] = float(model2d.flow.forward(xs)[0].std())  # back in latent space: std T
    ax.scatter(xs[:, 0], xs[:, 1], s=1, alpha=0.3)
    ax.set(
        title=f"T = {temperature}:  E[-log q] = {spread[temperature]:.2f}",
        aspect="equal",
        xlim=(-3.5, 3.5),
        ylim=(-3.5, 3.5),
    )
fig.tight_layout()
fig.savefig(f"{FIGDIR}/07_temperature_2d.png")
plt.show()
x_origin = model2d.flow.inverse(np.zeros((1, 2), dtype=np.float32))[0]
print("latent std of the tempered samples, mapped back:", {t: round(v, 3) for t, v in latent_std.items()})
print(
    f"the latent origin z = 0 maps to x = {x_origin[0].round(2)}, where log q = "
    f"{float(model2d.log_prob(x_origin)[0]):.2f} (average over data: "
    f"{-float(model2d.nll(toy.sample(N_SAMPLES, make_rng(4)))):.2f})"
)

# %% [markdown]
# Lower temperature pulls every latent towards the origin, so the samples crowd into
# the regions the flow built around the latent mode, and become less diverse.
# Whether they also become likelier under $q$ depends on the flow: here eight modes
# had to be carved out of one Gaussian, and wherever the flow put the image of the
# latent origin, cold samples pile up there, so $\mathbb E[-\log q]$ need not fall
# with $T$ (the titles show what this model does). Look at the modes at low
# temperature: they no longer carry equal mass. Those the flow built near the latent
# origin grow and the others shrink, so a tempered flow also reweights the mixture.
# Temperature is a tool for cleaner-looking samples, not a principled sharpening of $q$. At $T = 1$,
# $\mathbb E[-\log q]$ of the model's own samples is the entropy of $q$.
#
# ## 3. A model of digits, and exact reconstructions
#
# We train D8 (lesson 06) for a few epochs and push test digits through it. The
# inverse of the forward pass gives the input back, up to float32 rounding: a flow
# has no bottleneck and no reconstruction error to minimise. That also means a
# perfect reconstruction says **nothing** about the quality of the model: an
# untrained flow reconstructs just as well.

# %%
train, test = load_digits("train"), load_digits("test")
model = d8(seed=0)
optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)
rng_train = make_rng(0)
steps_per_epoch = math.ceil(len(train) / 64)  # 24, the last batch partial
for step in range(N_STEPS_D8):
    if step % steps_per_epoch == 0:
        order = rng_train.permutation(len(train))  # a new epoch
    first = (step % steps_per_epoch) * 64
    v_batch, _ = dequantize(train[order[first : first + 64]], N_LEVELS, rng_train, np.float32)
    model.zero_grads()
    model.nll_and_backward(v_batch)
    optimizer.step()

v_test, _ = dequantize(test[:16], N_LEVELS, make_rng(5), np.float32)
z_test, _ = model.flow.forward(v_test)  # (16, 4, 4, 4): one latent tensor per image
v_back, _ = model.flow.inverse(z_test)
recon_err = np.abs(v_back - v_test).max()
bpd = float(model.bits_per_dim(model.log_prob(v_test), N_LEVELS).mean())
print(f"{N_STEPS_D8} training steps; test bpd of these 16 digits {bpd:.3f}")
print(f"latent shape {z_test.shape}; max |inverse(forward(v)) - v| = {recon_err:.1e} (float32)")
assert recon_err < 1e-3

# %% [markdown]
# ## 4. The typical set: where Gaussian samples really are
#
# The standard normal in $D$ dimensions has its **mode** at $z = 0$, yet a sample is
# almost never near it. The squared norm $\|z\|^2 = \sum_i z_i^2$ is a sum of $D$
# independent terms with mean 1 and variance 2, so
#
# $$\mathbb E\|z\|^2 = D, \qquad \operatorname{std}\|z\|^2 = \sqrt{2D}, \qquad \|z\| \approx \sqrt D \pm \tfrac{1}{\sqrt 2}.$$
#
# For the digits' $D = 64$: norms between about 7 and 9, while the density at the
# mode is $e^{D/2} \approx 8\cdot10^{13}$ times the density at a typical sample. The
# volume of a shell grows like $r^{D-1}$, and it wins. If the model fits, test digits
# mapped to latent space should have norms like Gaussian samples:

# %%
D = 64
z_gauss = rng.standard_normal((100_000, D))
norms_gauss = np.linalg.norm(z_gauss, axis=1)
v_all, _ = dequantize(test, N_LEVELS, make_rng(6), np.float32)
norms_test = np.linalg.norm(model.flow.forward(v_all)[0].reshape(len(test), -1), axis=1)
print(f"N(0, I_64) samples: norm {norms_gauss.mean():.2f} +- {norms_gauss.std():.2f} (sqrt(64) = 8)")
print(f"test digits -> latent: norm {norms_test.mean():.2f} +- {norms_test.std():.2f}")

z_mode = np.zeros((1, 4, 4, 4), dtype=np.float32)
digit_at_mode = np.clip(model.flow.inverse(z_mode)[0][0, 0], 0, 1)

fig, axes = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [3, 1]})
axes[0].hist(norms_gauss, bins=80, density=True, alpha=0.5, label="norm of z ~ N(0, I_64)")
axes[0].hist(norms_test, bins=30, density=True, alpha=0.5, label="norm of f(test digit)")
axes[0].set(xlabel="||z||", title="Gaussian mass lives on a shell of radius ~ sqrt(D)")
axes[0].legend()
axes[1].imshow(digit_at_mode, cmap="gray_r", vmin=0, vmax=1)
axes[1].set(title="the mode z = 0, decoded", xticks=[], yticks=[])
fig.tight_layout()
fig.savefig(f"{FIGDIR}/07_typical_set.png")
plt.show()


# %% [markdown]
# The decoded mode is the single most likely latent, yet it is an atypical image:
# a smooth, average-looking blob, not a sample. Temperature $T < 1$ moves samples
# towards that mode, which is why it trades diversity for cleanliness.
#
# ## 5. Interpolating between two digits
#
# A straight line $z(t) = (1 - t) z_a + t z_b$ between two typical latents passes
# *inside* the shell: for independent $z_a, z_b$ of norm $\sqrt D$, the midpoint has
# norm about $\sqrt{D/2}$, a region no sample ever visits. Spherical linear
# interpolation (**slerp**) follows the great circle instead, with $\cos\Omega = \frac{z_a\cdot z_b}{\|z_a\|\|z_b\|}$:
#
# $$z(t) = \frac{\sin\big((1 - t)\Omega\big)}{\sin\Omega} z_a + \frac{\sin(t\Omega)}{\sin\Omega} z_b,$$
#
# which keeps the norm (exactly, when $\|z_a\| = \|z_b\|$). Two test digits, both ways:

# %%
def slerp(z_a, z_b, t):
    a, b = z_a.ravel(), z_b.ravel()
    omega = np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.reshape(z_a.shape)


z_a, z_b = z_test[0], z_test[3]
ts = np.linspace(0, 1, 9)
paths = {
    "straight line": np.stack([(1 - t) * z_a + t * z_b for t in ts]),
    "slerp": np.stack([slerp(z_a, z_b, t) for t in ts]),
}
fig, axes = plt.subplots(2, len(ts) + 1, figsize=(12, 3.2), gridspec_kw={"width_ratios": [1] * len(ts) + [2]})
norms_along = {}
for row, (name, path) in enumerate(paths.items()):
    images = np.clip(model.flow.inverse(path.astype(np.float32))[0][:, 0], 0, 1)
    norms_along[name] = np.linalg.norm(path.reshape(len(ts), -1), axis=1)
    for col, img in enumerate(images):
        axes[row, col].imshow(img, cmap="gray_r", vmin=0, vmax=1)
        axes[row, col].set(xticks=[], yticks=[])
    axes[row, 0].set_ylabel(name, fontsize=9)
    axes[row, -1].plot(ts, norms_along[name], "o-")
    axes[row, -1].set(ylim=(0, 12), title="||z(t)||" if row == 0 else "", xlabel="t" if row == 1 else "")
fig.tight_layout()
fig.savefig(f"{FIGDIR}/07_interpolation.png")
plt.show()
ratios = [n[4] / n[[0, -1]].min() for n in norms_along.values()]
print("digits: norm at the midpoint / at the ends: straight line {:.2f}, slerp {:.2f}".format(*ratios))

z_1, z_2 = rng.standard_normal((2, 1, 4, 4, 4))  # two independent typical latents
ends = min(np.linalg.norm(z_1), np.linalg.norm(z_2))
mid_line, mid_slerp = np.linalg.norm(0.5 * (z_1 + z_2)) / ends, np.linalg.norm(slerp(z_1, z_2, 0.5)) / ends
print(f"independent Gaussian latents: straight line {mid_line:.2f} (about 1/sqrt(2) = 0.71), slerp {mid_slerp:.2f}")

# %% [markdown]
# ## Check yourself

# %%
chi_mean = math.sqrt(2) * math.exp(math.lgamma((D + 1) / 2) - math.lgamma(D / 2))  # E||z|| for N(0, I_D)
rows = [
    ("sampling vs density pass: log q", sample_logq_err, "< 1e-3", sample_logq_err < 1e-3),
    ("T = 0.5: latent std of the samples", latent_std[0.5], "0.5+-5%", abs(latent_std[0.5] - 0.5) < 0.025),
    ("reconstruction error (float32)", recon_err, "< 1e-3", recon_err < 1e-3),
    (
        "E||z|| of N(0, I_64) vs chi mean",
        abs(norms_gauss.mean() - chi_mean),
        "< 0.01",
        abs(norms_gauss.mean() - chi_mean) < 0.01,
    ),
    ("slerp keeps the norm: midpoint / ends", mid_slerp, ">= 0.97", mid_slerp >= 0.97),
    ("straight line dips: midpoint / ends", mid_line, "< 0.8", mid_line < 0.8),
]
print(f"{'claim':<40} {'value':>9}  {'wanted':>8}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<40} {value:9.3g}  {wanted:>8}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - A sample and its exact log-density come from one inverse pass:
#   $\log q(x) = \log\mathcal N(z_0) - \log|\det\partial x/\partial z_0|$.
# - Temperature $T$ tempers the *latent* Gaussian; in data space it equals
#   $q^{1/T^2}$ only for volume-preserving flows. Lower $T$: less diverse samples, crowded
#   around the image of the latent mode (not necessarily likelier under $q$).
# - Reconstructions are exact by construction and measure nothing about fit.
# - In $D$ dimensions Gaussian mass sits on a shell of radius $\approx\sqrt D$, far from
#   the mode; straight-line interpolations cut through the empty inside, slerp stays on the shell.
#
# **Read more.** Kingma & Dhariwal (2018), *Glow*, arXiv:1807.03039, sections 5.3-5.4
# (temperature, interpolation); White (2016), *Sampling generative networks*,
# arXiv:1609.04468 (slerp); Nalisnick, Matsukawa, Teh, Gorur & Lakshminarayanan (2019),
# *Do deep generative models know what they don't know?*, arXiv:1810.09136, and
# Nalisnick et al. (2019), *Detecting out-of-distribution inputs to deep generative
# models using typicality*, arXiv:1906.02994.
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
    if abs(value - 64) < 1e-6:
        raise AssertionError("That is E||z||^2 at temperature 1; each coordinate now has variance T^2.")
    if abs(value - 0.7 * 64) < 1e-6:
        raise AssertionError("z = T * eps, so ||z||^2 = T^2 ||eps||^2: square the temperature.")
    assert abs(value - 0.49 * 64) < 1e-6, f"Not yet (you gave {value})."
    print("Exercise 1: correct! E||z||^2 = T^2 D = 31.36.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    if abs(value - 2) < 1e-9:
        raise AssertionError("N(z; 0, T^2 I) is proportional to N(z; 0, I) raised to 1/T^2, not 1/T.")
    if abs(value - 0.25) < 1e-9:
        raise AssertionError("Colder should sharpen the density: the exponent is larger than 1.")
    assert abs(value - 4) < 1e-9, f"Not yet (you gave {value})."
    print("Exercise 2: correct! With log|det J| constant, q_T = q^(1/T^2) / Z: exponent 4 at T = 0.5.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    g = np.random.default_rng(7)
    z_a, z_b = g.standard_normal(64), g.standard_normal(64)
    z_b *= np.linalg.norm(z_a) / np.linalg.norm(z_b)  # equal norms
    for t in (0.0, 0.3, 0.5, 1.0):
        got = np.asarray(answer(z_a, z_b, t), dtype=float)
        assert got.shape == z_a.shape, f"Return a vector like z_a, shape {z_a.shape}; got {got.shape}."
        if t == 0.5 and np.allclose(got, 0.5 * (z_a + z_b)):
            raise AssertionError("That is the straight line: its midpoint has a smaller norm. Follow the great circle.")
        assert np.isclose(np.linalg.norm(got), np.linalg.norm(z_a), rtol=1e-9), (
            f"At t = {t} the norm is {np.linalg.norm(got):.4f}, not {np.linalg.norm(z_a):.4f}."
        )
        assert np.allclose(got, slerp(z_a, z_b, t), atol=1e-9), f"Not yet: wrong point at t = {t}."
    print("Exercise 3: correct! slerp stays on the sphere and hits both ends.")


# %% [markdown]
# ### Exercise 1: the radius of a cold sample
#
# What is $\mathbb E\|z\|^2$ for latents of the digits model ($D = 64$) drawn at temperature $T = 0.7$?

# %%
answer_1 = None  # a number
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: temperature for a volume-preserving flow
#
# For a flow whose log-det is constant (NICE's additive couplings), sampling at
# temperature $T$ gives exactly $q_T(x) \propto q(x)^{\alpha}$. What is $\alpha$ at $T = 0.5$?

# %%
answer_2 = None  # a number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: write slerp
#
# Write `my_slerp(z_a, z_b, t)` for two vectors and a number $t \in [0, 1]$ from the formula in section 5.

# %%
answer_3 = None  # your function (z_a, z_b, t) -> vector
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
# **1.** $T^2 D = 0.49\cdot64 = 31.36$. **2.** $\mathcal N(z; 0, T^2I) \propto \mathcal N(z; 0, I)^{1/T^2}$, and a
# constant $|\det J|$ only changes the normaliser: $\alpha = 1/T^2 = 4$.
# **3.** The formula, with $\Omega$ from the normalised dot product.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_1 = 0.7**2 * 64
check_exercise_1(solution_1)

solution_2 = 1 / 0.5**2
check_exercise_2(solution_2)


def solution_3(z_a, z_b, t):
    omega = np.arccos(np.clip(z_a @ z_b / (np.linalg.norm(z_a) * np.linalg.norm(z_b)), -1, 1))
    return (np.sin((1 - t) * omega) * z_a + np.sin(t * omega) * z_b) / np.sin(omega)


check_exercise_3(solution_3)
