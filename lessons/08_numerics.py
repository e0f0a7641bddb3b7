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
# # 08 · Numerics: making flows train, and reading their numbers
#
# A flow multiplies dozens of Jacobian determinants and exponentiates learned
# log-scales; in float32, on a shared laptop, small choices decide whether training
# converges, diverges, or quietly does something else. This lesson puts those
# choices side by side, each with a measurement.
#
# **You will learn to**
# 1. compare four parameterisations of a coupling's scale ($e^h$, $e^{\tanh h}$, $e^{\sigma\tanh h}$, $\operatorname{sigmoid}(h + 2)$), with their gradients;
# 2. see what ActNorm's data-dependent initialisation buys at the first step;
# 3. use `slogdet` (sign and log-magnitude) instead of `log(det)`, and know why;
# 4. tell where float32 is enough and where float64 is needed (gradient checks, round trips);
# 5. stabilise the first steps with a learning-rate warm-up, and split a bits/dim number into its terms.
#
# **Time:** about 60 minutes. **Prerequisites:** lessons 02, 03, 05 and 06.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.backend import get_array_module, log_sigmoid, make_rng, sigmoid
from minflow.data.digits import N_LEVELS, load_digits
from minflow.data.toy2d import get_toy
from minflow.distributions import StandardNormal
from minflow.flows import AffineCoupling, Flow
from minflow.flows.actnorm import ActNorm
from minflow.flows.invertible_linear import InvertibleLinear
from minflow.flows.preprocessing import dequantize
from minflow.gradcheck import gradcheck, numerical_gradient, relative_error
from minflow.model import FlowModel
from minflow.optim import Adam
from minflow.train import TrainingDiverged, fit
from minflow.zoo.d8 import d8

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_STEPS = 60 if FAST else 3000  # steps per scale parameterisation at lr 1e-3
N_STRESS = 20 if FAST else 400  # steps of the high learning-rate stress test
WARMUP = 10 if FAST else 100  # warm-up steps in the stress test
N_TEST = 10_000 if FAST else 100_000  # held-out samples for the test NLL
N_STEPS_D8 = 3 if FAST else 120  # D8 steps before the bits/dim breakdown (24 per epoch)
N_TEST_IMAGES = 60 if FAST else 300  # test digits in the bits/dim breakdown

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
rng = np.random.default_rng(0)
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)


# %% [markdown]
# ## 1. Four ways to parameterise the scale
#
# An affine coupling computes $z_b = x_b \odot \mathrm{scale} + t$ with
# $\log|\det J| = \sum_j \log \mathrm{scale}_j$. The network outputs a raw $h$; how we
# turn $h$ into a positive scale decides how large one step can move it. With
# $s = \log\mathrm{scale}$, the backward of lesson 03 gives $\bar s$, and each choice
# only changes the last link, $\bar h = \bar s \cdot ds/dh$:
#
# | name | scale | $s = \log\mathrm{scale}$ | $ds/dh$ | range of $s$ |
# |---|---|---|---|---|
# | exp | $e^{h}$ | $h$ | $1$ | $\mathbb R$: unbounded |
# | tanh (minflow's default, R2) | $e^{\tanh h}$ | $\tanh h$ | $1 - \tanh^2 h$ | $(-1, 1)$ |
# | learnable × tanh | $e^{\sigma\tanh h}$ | $\sigma\tanh h$ | $\sigma(1 - \tanh^2 h)$, and $\partial s/\partial\sigma = \tanh h$ | $(-\sigma, \sigma)$, $\sigma$ learned |
# | sigmoid (Glow) | $\operatorname{sigmoid}(h + 2)$ | $\log\operatorname{sigmoid}(h + 2)$ | $1 - \operatorname{sigmoid}(h + 2)$ | $(-\infty, 0)$: contracts only |
#
# (For the last row: $\frac{d}{du}\log\operatorname{sigmoid}(u) = \frac{\operatorname{sigmoid}(u)(1 - \operatorname{sigmoid}(u))}{\operatorname{sigmoid}(u)} = 1 - \operatorname{sigmoid}(u)$.
# The $+2$ makes a zero-initialised network start near the identity, scale
# $\operatorname{sigmoid}(2) = 0.88$.) minflow's `AffineCoupling` has the tanh forms;
# the other two are written here as subclasses that replace only the two hooks
# where the scale is made and differentiated:

# %%
class ExpCoupling(AffineCoupling):
    # scale = exp(h): s = h, ds/dh = 1
    def _log_scale_and_shift(self, x_a):
        h = self.net.forward(x_a)  # (N, 2 Db)
        return h[:, : self.db], h[:, self.db :], None  # s, t, nothing to cache

    def _through_conditioner(self, ds, dt, cache):
        xp = get_array_module(ds)
        return self.net.backward(xp.concatenate([ds, dt], axis=1))


class SigmoidCoupling(AffineCoupling):
    # scale = sigmoid(h + 2): s = log_sigmoid(h + 2), ds/dh = 1 - sigmoid(h + 2)
    def _log_scale_and_shift(self, x_a):
        h = self.net.forward(x_a)
        u = h[:, : self.db] + 2.0
        return log_sigmoid(u), h[:, self.db :], sigmoid(u)  # s, t, sigmoid for the backward

    def _through_conditioner(self, ds, dt, sig):
        xp = get_array_module(ds)
        return self.net.backward(xp.concatenate([ds * (1 - sig), dt], axis=1))


KINDS = ("exp", "tanh", "learnable x tanh", "sigmoid(h + 2)")


def coupling(kind, mask, dtype=np.float32, rng=None):
    if kind == "exp":
        return ExpCoupling(2, mask, dtype=dtype, rng=rng)
    if kind == "sigmoid(h + 2)":
        return SigmoidCoupling(2, mask, dtype=dtype, rng=rng)
    return AffineCoupling(2, mask, learnable_scale=(kind == "learnable x tanh"), dtype=dtype, rng=rng)


def r2_with(kind, seed=0, dtype=np.float32):
    # the R2 model (8 couplings, conditioner 1 -> 64 -> 64 -> 2) with the given scale
    rng_init = make_rng(seed)
    layers = [coupling(kind, np.arange(2) == k % 2, dtype, rng_init) for k in range(8)]
    return FlowModel(Flow(layers), StandardNormal((2,)))


scale_reports = {}
for kind in KINDS:
    layer = coupling(kind, np.array([True, False]), np.float64, make_rng(1))
    for prm in layer.params.values():  # random weights (a fresh coupling is the identity)
        prm[...] = 0.5 * rng.standard_normal(prm.shape)
    if "scale" in layer.params:
        layer.params["scale"][...] = 1.3  # the learnable bound, away from 0
    scale_reports[kind] = gradcheck(layer, rng.standard_normal((6, 2)), verbose=False)
    print(f"{kind:<18} gradcheck ok: {scale_reports[kind].ok}, worst error {scale_reports[kind].max_error:.1e}")
assert all(r.ok for r in scale_reports.values())

# %% [markdown]
# **On one model.** R2 with each scale, on the checkerboard, with R2's recipe
# (Adam at $10^{-3}$, batch 512):

# %%
toy = get_toy("checkerboard")
x_test = toy.sample(N_TEST, make_rng(123))


def train(kind, lr, n_steps, warmup=0, seed=0):
    # returns (test NLL - H, largest log-scale seen) or ("diverged at step k", None)
    model = r2_with(kind, seed=seed)
    optimizer = Adam(model.params, model.grads, lr=lr)
    rng_data = make_rng(1 + seed)
    biggest = [0.0]

    def loss_and_backward(step):
        optimizer.lr = lr * min(1.0, (step + 1) / warmup) if warmup else lr  # linear warm-up
        loss = model.nll_and_backward(toy.sample(512, rng_data))
        return loss

    try:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is what we are testing for
            fit(model, loss_and_backward, n_steps, optimizer, progress=False, log_every=10)
    except TrainingDiverged as err:
        first_divergence.setdefault("message", str(err).splitlines()[0])
        return f"diverged at step {err.step}", None
    h = x_test[:2000]
    for layer in model.flow.layers:  # in 2D a layer's log-det is its one s: the largest |s| seen
        h, logdet = layer.forward(h)
        biggest[0] = max(biggest[0], float(np.abs(logdet).max()))
    return float(model.nll(x_test)) - toy.entropy, biggest[0]


first_divergence = {}
gaps = {kind: train(kind, 1e-3, N_STEPS) for kind in KINDS}
print(f"checkerboard, lr 1e-3, {N_STEPS} steps (H = ln 8)")
print(f"{'scale':<18} {'NLL - H':>8} {'max |s|':>8}")
for kind, (gap, biggest) in gaps.items():
    print(f"{kind:<18} {gap:8.3f} {biggest:8.2f}")

# %% [markdown]
# In the committed full run the two bounded $\tanh$ forms fit best, the unbounded
# $e^{h}$ trains but ends behind them (with larger log-scales), and the sigmoid scale
# is the odd one out: it can only *contract* in the density
# direction ($s < 0$), and at initialisation every layer already contracts by 0.88, so
# the model must spend capacity undoing that. Glow pairs it with ActNorm, which
# provides the expansions.
#
# **A stress test: learning rate 0.1, with and without warm-up.** Adam's first steps
# move every parameter by about the learning rate whatever the gradient's size (its
# update is normalised), so a large rate makes the first steps violent. An
# unbounded scale turns that into $e^{h}$ with a large $h$, an overflow, and a NaN.
# A **linear warm-up** raises the rate from 0 to its target over the first steps;
# the loop above does it in one line, `optimizer.lr = lr * min(1, (step + 1) / warmup)`.
# Two seeds each:

# %%
stress = {}
for kind in ("exp", "tanh"):
    for warmup in (0, WARMUP):
        for seed in (0, 1):
            stress[kind, warmup, seed] = train(kind, 0.1, N_STRESS, warmup=warmup, seed=seed)[0]
print(f"lr 0.1, {N_STRESS} steps: NLL - H, or where training diverged")
for (kind, warmup, seed), result in stress.items():
    shown = f"{result:.3f}" if isinstance(result, float) else result
    print(f"{kind:<5} warm-up {warmup:>3} steps, seed {seed}:  {shown}")
print("\nthe first divergence said:", first_divergence.get("message", "(none)"))

# %% [markdown]
# minflow's training loop stops at the first non-finite loss or gradient, restores
# the last good parameters and names the first layer that produced a NaN
# (`TrainingDiverged`). The bounded $\tanh$ scale cannot overflow at all: one layer
# scales by at most $e$. Warm-up helps the first steps but is no cure for an
# unbounded parameterisation (see which runs survive in the full-mode table). That is
# why minflow uses $s = \tanh(\tilde s)$ by default.
#
# ## 2. ActNorm's data-dependent initialisation
#
# Data rarely arrives with zero mean and unit variance. Take the moons, scaled by 10
# and shifted by 30: a flow that starts as the identity assigns them the density
# of a standard normal, far out in its tail. ActNorm (lesson 05) as the first layer,
# initialised on the first batch, starts the model at the best diagonal Gaussian instead.

# %%
moons = get_toy("moons")


def shifted(n, rng_):
    return 10 * moons.sample(n, rng_) + 30  # (n, 2), mean ~ 30, std ~ 10


first_nll = {}
for data_init in (False, True):
    rng_init = make_rng(0)
    layers = [ActNorm(2, data_init=data_init)]
    layers += [AffineCoupling(2, np.arange(2) == k % 2, rng=rng_init) for k in range(8)]
    model = FlowModel(Flow(layers), StandardNormal((2,)))
    first_nll[data_init] = float(model.nll(shifted(4096, make_rng(1))))  # the first forward initialises
print(f"NLL at step 0: identity start {first_nll[False]:.1f} nats, ActNorm data init {first_nll[True]:.2f} nats")

# %% [markdown]
# About a thousand nats against a few: with the identity start, the first gradients are
# enormous ($\partial L/\partial z = z/N$ with $z \approx 30$) and the first steps are spent
# only on moving and shrinking the data. Data-dependent initialisation removes that
# phase, and keeps every layer's input near unit scale, where $\tanh$ and the
# conditioner work best.
#
# ## 3. `slogdet`, never `log(det)`
#
# A determinant can be negative (any reflection), and a product of many factors
# under- or overflows long before its logarithm does. `slogdet` returns the sign and
# $\log|\det|$ separately, computed from an LU factorisation as a sum of logs:

# %%
reflection = np.array([[0.0, 1.0], [1.0, 0.0]])  # swaps two coordinates: det = -1
with np.errstate(invalid="ignore", divide="ignore"):
    print("det of a reflection:", np.linalg.det(reflection), "-> log(det) =", np.log(np.linalg.det(reflection)))
    print("slogdet:", np.linalg.slogdet(reflection), "-> log|det| = 0, a volume-preserving map")
    big = 0.1 * np.eye(400)  # shrinks each of 400 coordinates by 10
    print("det(0.1 I_400) =", np.linalg.det(big), "(underflow) -> log =", np.log(np.linalg.det(big)))
slog = np.linalg.slogdet(big)[1]
print(f"slogdet: {slog:.3f} = 400 ln 0.1 = {400 * math.log(0.1):.3f}")

mirror = InvertibleLinear.from_matrix(reflection, dtype=np.float64)
z_m, logdet_m = mirror.forward(rng.standard_normal((3, 2)))
print("InvertibleLinear with det W = -1: logdet =", logdet_m)
assert np.allclose(logdet_m, 0) and abs(slog - 400 * math.log(0.1)) < 1e-9

# %% [markdown]
# minflow computes every matrix log-det with `slogdet` in float64 (and the LU form of
# lesson 05 as $\sum\log|s|$, with the signs kept apart), and every log-density in log
# space, never by exponentiating first.
#
# ## 4. float32 or float64?
#
# Training runs in float32 (half the memory, twice the speed on most hardware) and
# loses nothing that matters: a log-likelihood is needed to a few digits. Two places
# need float64.
#
# **Gradient checks.** A central difference has truncation error $O(h^2)$ and
# rounding error about $\epsilon_{\text{mach}}|L|/h$. The total is smallest near
# $h \approx \epsilon_{\text{mach}}^{1/3}$, where the error is of order $\epsilon_{\text{mach}}^{2/3}$:
# $h \approx 5\cdot10^{-3}$ and an error near $10^{-5}$ in float32 (too coarse to tell a small bug
# from rounding), $h \approx 6\cdot10^{-6}$ and an error near $10^{-11}$ in float64. Hence
# minflow's checks: float64, $h = 10^{-5}$, tolerance $10^{-6}$.

# %%
hs = np.logspace(-9, -1, 17)
fd_errors = {}
for dtype in (np.float32, np.float64):
    layer = AffineCoupling(4, np.array([True, True, False, False]), hidden=(16,), dtype=dtype, rng=make_rng(2))
    for prm in layer.params.values():
        prm[...] = (0.5 * rng.standard_normal(prm.shape)).astype(dtype)
    x = rng.standard_normal((8, 4)).astype(dtype)
    dz, dlogdet = rng.standard_normal((8, 4)).astype(dtype), rng.standard_normal(8).astype(dtype)
    layer.forward(x)
    analytic = layer.backward(dz, dlogdet).astype(np.float64)

    def loss(layer=layer, x=x, dz=dz, dlogdet=dlogdet):  # bind this iteration's arrays
        z, logdet = layer.forward(x)
        return float((dz * z).sum() + (dlogdet * logdet).sum())

    fd_errors[dtype.__name__] = [relative_error(analytic, numerical_gradient(loss, x, h)) for h in hs]

fig, ax = plt.subplots(figsize=(6, 3.6))
for name, errs in fd_errors.items():
    ax.loglog(hs, errs, "o-", label=name)
ax.axvline(1e-5, color="0.5", ls=":", label="h = 1e-5 (minflow)")
ax.set(
    xlabel="finite-difference step h",
    ylabel="relative error of the gradient",
    title="central differences: rounding (left) vs truncation (right)",
)
ax.legend()
fig.tight_layout()
fig.savefig(f"{FIGDIR}/08_finite_differences.png")
plt.show()
best = {name: min(errs) for name, errs in fd_errors.items()}
print({name: f"{err:.1e}" for name, err in best.items()})

# %% [markdown]
# **Round trips through deep flows.** Each layer's inverse is exact in real numbers,
# but every layer can amplify the rounding errors of the layers after it (through
# its scale *and* through its conditioner, whose output depends on the copied half).
# For a stack of layers with random weights the amplification compounds with
# depth:

# %%
depths = (1, 4, 16, 64)
roundtrip = {}
for dtype in (np.float32, np.float64):
    rng_init = make_rng(3)
    layers = [AffineCoupling(2, np.arange(2) == k % 2, hidden=(32,), dtype=dtype, rng=rng_init) for k in range(64)]
    for layer in layers:
        for prm in layer.params.values():
            prm[...] = (0.4 * rng.standard_normal(prm.shape)).astype(dtype)
    x = rng.standard_normal((1000, 2)).astype(dtype)
    for depth in depths:
        flow = Flow(layers[:depth])
        roundtrip[dtype.__name__, depth] = float(np.abs(flow.inverse(flow.forward(x)[0])[0] - x).max())
print(f"{'layers':>6} {'float32':>10} {'float64':>10}   max |inverse(forward(x)) - x|")
for depth in depths:
    print(f"{depth:>6} {roundtrip['float32', depth]:10.1e} {roundtrip['float64', depth]:10.1e}")

# %% [markdown]
# The error grows roughly geometrically with depth. float64's 16 digits buy many
# more layers before the reconstruction is lost, but no precision makes a badly
# conditioned flow well behaved: trained flows are much better conditioned than
# these random stacks, yet the same mechanism is behind the "exploding inverses" of
# deep invertible networks (Behrmann et al. 2021). minflow's tests check round trips
# in float64 (tolerance $10^{-10}$) on single layers and small flows.

# %% [markdown]
# ## 5. Bits per dimension, term by term
#
# A bits/dim number hides a sum. For D8 (lesson 06), with $v$ the dequantised image,
# $D = 64$ and $k = 17$:
#
# $$\mathrm{bpd} = \frac{1}{D\ln 2}\Big[\underbrace{-\log\mathcal N(z)}_{\text{base}} \;-\; \sum_{\text{layers}} \ell_k \;+\; \underbrace{D\ln k}_{\text{bin width}}\Big],$$
#
# each layer's log-det lowering the bpd when positive (it expands, spreading the
# data out in latent space). Splitting a briefly trained D8 into these terms, per
# layer, on the test digits:

# %%
train_images, test_images = load_digits("train"), load_digits("test")
model = d8(seed=0)
optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)
rng_train = make_rng(0)
for step in range(N_STEPS_D8):
    batch = train_images[rng_train.permutation(len(train_images))[:64]]
    v_batch, _ = dequantize(batch, N_LEVELS, rng_train, np.float32)
    model.zero_grads()
    model.nll_and_backward(v_batch)
    optimizer.step()

v, _ = dequantize(test_images[:N_TEST_IMAGES], N_LEVELS, make_rng(1), np.float64)
model64 = model.astype(np.float64)  # evaluate in float64: the terms should add up exactly
D, to_bits = 64, 1 / (64 * math.log(2))
terms, h = [], v
for i, layer in enumerate(model64.flow.layers):
    h, logdet = layer.forward(h)
    terms.append((f"layer {i}: {type(layer).__name__}", -float(logdet.mean()) * to_bits))
terms.append(("base: -log N(z)", -float(model64.base.log_prob(h).mean()) * to_bits))
terms.append(("bin width: + D ln 17", D * math.log(N_LEVELS) * to_bits))
total = sum(value for _, value in terms)
direct = float(model64.bits_per_dim(model64.log_prob(v), N_LEVELS).mean())
print(f"{'term':<36} {'bits/dim':>9}")
for name, value in terms:
    print(f"{name:<36} {value:9.3f}")
print(f"{'sum':<36} {total:9.3f}   (model.bits_per_dim: {direct:.3f})")
assert abs(total - direct) < 1e-9

# %% [markdown]
# The logit layer alone contributes a large negative term (it stretches $[0, 1]$ onto
# the real line), the base term is large and positive, and the couplings move bits
# between them; $\log_2 17 = 4.087$ is the price of the bin width. Comparing two models
# term by term shows where one gains on the other.
#
# ## Check yourself

# %%
stress_exp_diverged = sum(isinstance(r, str) for (k, _, _), r in stress.items() if k == "exp")
stress_tanh_diverged = sum(isinstance(r, str) for (k, _, _), r in stress.items() if k == "tanh")
rows = [
    (
        "all four scales pass gradcheck",
        max(r.max_error for r in scale_reports.values()),
        "< 1e-6",
        all(r.ok for r in scale_reports.values()),
    ),
    ("tanh never diverges (stress runs)", stress_tanh_diverged, "= 0", stress_tanh_diverged == 0),
    ("tanh keeps |s| <= 1", gaps["tanh"][1], "<= 1", gaps["tanh"][1] <= 1),
    (
        "ActNorm init: step-0 NLL lower",
        first_nll[False] - first_nll[True],
        "> 100",
        first_nll[False] - first_nll[True] > 100,
    ),
    ("slogdet of 0.1 I_400", slog, "= -921.03", abs(slog - 400 * math.log(0.1)) < 1e-9),
    ("best finite-difference error, float64", best["float64"], "< 1e-8", best["float64"] < 1e-8),
    ("best finite-difference error, float32", best["float32"], "> 1e-6", best["float32"] > 1e-6),
    ("round trip, 64 layers, float64", roundtrip["float64", 64], "< 1e-4", roundtrip["float64", 64] < 1e-4),
    (
        "round trip, 64 layers: float32 / float64",
        roundtrip["float32", 64] / roundtrip["float64", 64],
        "> 1e3",
        roundtrip["float32", 64] > 1e3 * roundtrip["float64", 64],
    ),
    ("bits/dim terms add up", abs(total - direct), "< 1e-9", abs(total - direct) < 1e-9),
]
if not FAST:
    rows.append(("exp diverges in some stress run", stress_exp_diverged, ">= 1", stress_exp_diverged >= 1))
print(f"{'claim':<40} {'value':>10}  {'wanted':>9}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<40} {value:10.3g}  {wanted:>9}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - The scale's parameterisation only changes the last link of the backward,
#   $\bar h = \bar s\, ds/dh$, but decides stability: $e^{h}$ can overflow, $e^{\tanh h}$
#   cannot (at most $e$ per layer), a learned bound $\sigma\tanh h$ adds freedom,
#   and $\operatorname{sigmoid}(h+2)$ only contracts.
# - ActNorm's data-dependent initialisation starts the model at the data's scale
#   and removes a costly first phase of training.
# - Use `slogdet`: a determinant's sign is irrelevant to the density, and its
#   magnitude under- or overflows long before its logarithm does.
# - float32 for training; float64 for gradient checks (rounding error
#   $\epsilon/h$) and wherever a small determinant or inverse is formed.
# - Warm-up tames the first, normalised Adam steps; it does not fix an unbounded scale.
# - bits/dim = (base term $-$ sum of log-dets $+ D\ln k$) / $(D\ln 2)$, and each term can be read off.
#
# **Read more.** Dinh, Sohl-Dickstein & Bengio (2016), arXiv:1605.08803, section 3.7
# (batch normalisation); Kingma & Dhariwal (2018), arXiv:1807.03039, section 3.1 and
# Table 1 (ActNorm, sigmoid scale); Behrmann, Vicol, Wang, Grosse & Jacobsen (2021),
# *Understanding and mitigating exploding inverses in invertible neural networks*,
# arXiv:2006.09347; Goyal et al. (2017), *Accurate, large minibatch SGD*,
# arXiv:1706.02677 (warm-up); Higham (2002), *Accuracy and Stability of Numerical
# Algorithms*, chapter 1 (rounding vs truncation).
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
    sig2 = 1 / (1 + math.exp(-2))
    if abs(value - sig2 * (1 - sig2)) < 1e-6:
        raise AssertionError("That is sigmoid'(2); s is the LOG of the sigmoid: divide by sigmoid(2).")
    if abs(value - sig2) < 1e-6:
        raise AssertionError("That is the scale itself at h = 0, not the derivative of its log.")
    assert abs(value - (1 - sig2)) < 1e-6, f"Not yet (you gave {value:.6f})."
    print(f"Exercise 1: correct! ds/dh = 1 - sigmoid(2) = {1 - sig2:.4f}.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    if abs(value - 16) < 1e-9:
        raise AssertionError("Each coupling transforms only one of the two coordinates: one s per layer in 2D.")
    if abs(value - 4) < 1e-9:
        raise AssertionError("Each coordinate is transformed by 4 layers, but the log-dets of both coordinates add.")
    assert abs(value - 8) < 1e-9, f"Not yet (you gave {value})."
    print("Exercise 2: correct! 8 layers x one s in (-1, 1) each: |log det| < 8.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    truth = 12.8 / (64 * math.log(2))
    if abs(value - 12.8 / 64) < 1e-6:
        raise AssertionError("That is in nats per dimension: divide by ln 2 as well.")
    if abs(value - 12.8 / math.log(2)) < 1e-6:
        raise AssertionError("That is bits per IMAGE: divide by the 64 dimensions.")
    assert abs(value - truth) < 1e-6, f"Not yet (you gave {value:.5f})."
    print(f"Exercise 3: correct! 12.8 / (64 ln 2) = {truth:.4f} bits per dimension.")


# %% [markdown]
# ### Exercise 1: the sigmoid scale's derivative
#
# For Glow's scale, $s = \log\operatorname{sigmoid}(h + 2)$. What is $ds/dh$ at $h = 0$ (a
# freshly initialised coupling)?

# %%
answer_1 = None  # a number
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: how far can R2 stretch?
#
# R2 has 8 affine couplings in 2D with $s = \tanh(\tilde s)$. What bound $B$ holds for
# its total log-det, $|\log|\det J|| < B$, whatever the weights?

# %%
answer_2 = None  # a number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: one layer's share of the bits
#
# On the digits ($D = 64$), a layer's log-det is $+12.8$ nats per image on average. By
# how many bits per dimension does that layer lower the bpd?

# %%
answer_3 = None  # a number
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
# **1.** $1 - \operatorname{sigmoid}(2) \approx 0.1192$. **2.** Each layer contributes one
# $s \in (-1, 1)$ (it transforms one coordinate), so $|\log|\det J|| < 8$.
# **3.** $12.8/(64\ln 2) \approx 0.289$.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_1 = 1 - 1 / (1 + math.exp(-2))
check_exercise_1(solution_1)

solution_2 = 8
check_exercise_2(solution_2)

solution_3 = 12.8 / (64 * math.log(2))
check_exercise_3(solution_3)
