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
# # 02 · Coupling layers: NICE, RealNVP, and maximum likelihood in 2D
#
# Lesson 01 ended with a triangular map whose log-determinant was just the sum of
# its diagonal logs. Coupling layers make that trick *learnable*: half of the
# vector is copied, and a neural network reading that half says how to shift and
# scale the other half. Stack a few, alternating halves, and you have RealNVP.
#
# **You will learn to**
# 1. derive the Jacobian of an affine coupling and see why its determinant costs nothing, whatever the network;
# 2. write NICE's additive and RealNVP's affine coupling inline, and check them against minflow's layers;
# 3. train a flow by maximum likelihood with an explicit loop, and know what each gradient is;
# 4. read a test NLL against the true entropy: $\mathrm{NLL} - H(p) = \mathrm{KL}(p\,\|\,q) \ge 0$;
# 5. watch a trained flow warp space, layer by layer.
#
# **Time:** about 60 minutes (the full run trains four models for a few minutes).
# **Prerequisites:** lesson 01; what an MLP is.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import minflow
from minflow import viz
from minflow.backend import make_rng
from minflow.data.toy2d import get_toy
from minflow.distributions import StandardNormal
from minflow.flows import AdditiveCoupling, AffineCoupling, Flow, half_mask, parity_mask
from minflow.gradcheck import check_logdet, check_roundtrip
from minflow.model import FlowModel
from minflow.optim import Adam
from minflow.train import fit_samples
from minflow.zoo import realnvp_2d

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_STEPS = 200 if FAST else 5000  # optimizer steps per model (the R2 recipe: 5,000)
N_STEPS_NICE = 200 if FAST else 3000  # steps of the NICE vs RealNVP comparison
BATCH = 512  # fresh exact samples per step
N_TEST = 10_000 if FAST else 100_000  # held-out samples for the test NLL
GRID = 100 if FAST else 200  # cells per side of density pictures
DATASETS = ["moons", "gaussians8", "checkerboard", "rings"]

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)


# %% [markdown]
# ## 1. The coupling trick
#
# Split the input $x \in \mathbb R^D$ with a fixed boolean **mask** into a copied
# part $x_a$ ($D_a$ coordinates) and a transformed part $x_b$ ($D_b$ coordinates).
# An **affine coupling** (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016) maps
#
# $$z_a = x_a, \qquad z_b = x_b \odot \exp\big(s(x_a)\big) + t(x_a),$$
#
# where $s, t : \mathbb R^{D_a} \to \mathbb R^{D_b}$ come from one neural network
# (the *conditioner*) that reads only $x_a$, and $\odot$ is the elementwise product.
#
# **Inverse.** $z_a = x_a$ tells us $x_a$; with it we can recompute $s$ and $t$ and
# solve the second equation for $x_b$:
#
# $$x_a = z_a, \qquad x_b = \big(z_b - t(z_a)\big) \odot \exp\big(-s(z_a)\big).$$
#
# The network itself is never inverted, so it can be anything.
#
# **Jacobian.** Order the coordinates as $(a, b)$. Then
#
# $$\frac{\partial z}{\partial x} = \begin{pmatrix} \partial z_a/\partial x_a & \partial z_a/\partial x_b \\ \partial z_b/\partial x_a & \partial z_b/\partial x_b \end{pmatrix}
# = \begin{pmatrix} I_{D_a} & 0 \\ \ast & \operatorname{diag}\big(e^{s(x_a)}\big) \end{pmatrix}.$$
#
# The top right block is zero because $z_a$ does not depend on $x_b$, and the
# bottom right block is diagonal because $z_{b,j}$ depends on $x_b$ only through
# $x_{b,j}$. A block-triangular matrix has the determinant of its diagonal blocks,
# $\det I \cdot \prod_j e^{s_j}$, so
#
# $$\log\left|\det \frac{\partial z}{\partial x}\right| = \sum_{j=1}^{D_b} s_j(x_a).$$
#
# The block $\ast = \partial z_b / \partial x_a$ contains the whole network's
# Jacobian, and we never need it. minflow bounds the log-scale,
# $s = \tanh(\tilde s)$ with $\tilde s$ the raw network output, so a single layer
# can scale by at most $e^{\pm 1}$ per coordinate; lesson 08 compares other choices.
#
# Here is the forward pass written out, next to minflow's `AffineCoupling`. We
# use the layer's own conditioner `layer.net` (an MLP with a hand-written backward
# from `minflow.nn`) and give it random weights: a fresh coupling starts as the
# identity, because its last linear layer is zero.

# %%
def randomise(module, scale=0.5, seed=0):
    # give every parameter random values (a fresh coupling is the identity map)
    rng_params = np.random.default_rng(seed)
    for p in module.params.values():
        p[...] = scale * rng_params.standard_normal(p.shape)


def my_affine_forward(x, mask, net):
    x_a, x_b = x[:, mask], x[:, ~mask]  # (N, Da), (N, Db)
    d_b = x_b.shape[1]
    h = net.forward(x_a)  # (N, 2 Db): raw log-scale and shift
    s, t = np.tanh(h[:, :d_b]), h[:, d_b:]  # (N, Db) each
    z = np.empty_like(x)
    z[:, mask] = x_a  # copied
    z[:, ~mask] = x_b * np.exp(s) + t  # transformed
    return z, s.sum(axis=1)  # logdet: (N,)


D = 4
layer = AffineCoupling(D, half_mask(D), hidden=(16, 16), dtype=np.float64, rng=make_rng(1))
randomise(layer)
x = np.random.default_rng(2).standard_normal((5, D))

z_mine, logdet_mine = my_affine_forward(x, layer.mask, layer.net)
z_minflow, logdet_minflow = layer.forward(x)
diff_inline = max(np.abs(z_mine - z_minflow).max(), np.abs(logdet_mine - logdet_minflow).max())
print("mask (True = copied):", layer.mask)
print(f"inline vs minflow: max difference {diff_inline:.1e}")
assert diff_inline < 1e-12


# %% [markdown]
# The Jacobian of one sample, by finite differences, shows the structure we derived:
# an identity block for the copied coordinates, zeros above, a diagonal block
# $e^{s}$ at the bottom right, and a dense block $\ast$ at the bottom left.

# %%
def jacobian(fn, x0, h=1e-6):
    # J[i, j] = d fn_i / d x_j at one point x0 (D,), by central differences; fn maps (N, D) to (N, D)
    cols = []
    for j in range(x0.size):
        e = np.zeros_like(x0)
        e[j] = h
        cols.append((fn((x0 + e)[None])[0] - fn((x0 - e)[None])[0]) / (2 * h))
    return np.stack(cols, axis=1)


J = jacobian(lambda v: layer.forward(v)[0], x[0])
np.set_printoptions(precision=3, suppress=True)
print(J)
s0 = np.tanh(layer.net.forward(x[:1, layer.mask])[:, : D // 2])[0]
print("exp(s) of this sample:", np.exp(s0), " log|det J| =", np.log(abs(np.linalg.det(J))), " sum(s) =", s0.sum())
print(check_logdet(layer, x))
print(check_roundtrip(layer, x))
assert check_logdet(layer, x).ok and check_roundtrip(layer, x).ok


# %% [markdown]
# ## 2. NICE: the additive coupling
#
# NICE (Dinh, Krueger & Bengio 2014) came first, with $s = 0$:
#
# $$z_a = x_a, \qquad z_b = x_b + t(x_a), \qquad \log|\det J| = \log 1 = 0.$$
#
# Its Jacobian has ones on the diagonal: an additive coupling is **volume
# preserving**. It can shear and bend space, but it can never concentrate mass, so
# NICE adds one diagonal scaling layer $z \mapsto e^{S} \odot z$ at the very end
# (section 3.3 of the paper) to let the volume change at all.
#
# What does volume preservation cost? Train both kinds with the same recipe on the
# two moons: 8 couplings alternating the copied coordinate, conditioner
# $1 \to 64 \to 64 \to \cdot$.

# %%
def make_flow(kind, n_layers=8, seed=0):
    rng_init = make_rng(seed)
    layers = []
    for k in range(n_layers):
        mask = parity_mask(2, k % 2)  # layer k copies coordinate k % 2
        if kind == "additive":
            layers.append(AdditiveCoupling(2, mask, hidden=(64, 64), rng=rng_init))
        else:
            layers.append(AffineCoupling(2, mask, hidden=(64, 64), rng=rng_init))
    return FlowModel(Flow(layers), StandardNormal((2,)))


moons = get_toy("moons")
x_test_moons = moons.sample(N_TEST, make_rng(123))  # held out, drawn once
nice_rows = []
for kind in ["additive", "affine"]:
    model_k = make_flow(kind)
    fit_samples(model_k, moons.sample, N_STEPS_NICE, batch_size=BATCH, lr=1e-3, seed=1, progress=False)
    nll = float(model_k.nll(x_test_moons))
    nice_rows.append((kind, nll, nll - moons.entropy))
print(f"{'coupling':<10} {'test NLL':>9} {'NLL - H':>9}   ({N_STEPS_NICE} steps, moons, H = {moons.entropy:.4f})")
for kind, nll, gap in nice_rows:
    print(f"{kind:<10} {nll:9.4f} {gap:9.4f}")

# %% [markdown]
# With $\log|\det J| = 0$, the additive flow's density is $q(x) = \mathcal N(f(x); 0, I)$,
# which can never exceed the peak of the base density, anywhere (exercise 3 asks how
# high that ceiling is). The moons are sharper than that, so the additive model pays
# a gap the affine one does not.
#
# ## 3. Masks: which half is copied
#
# A coupling never changes its copied coordinates, so layers must **alternate**
# which coordinates they copy. `minflow.flows.masks` has the two usual patterns:
# `half_mask(D)` copies the first (or second) half, `parity_mask(D, q)` copies the
# coordinates $i$ with $i \bmod 2 = q$. In 2D either one copies one coordinate
# and transforms the other: layer $k$ of the reference model R2 copies $x_{k \bmod 2}$.
# On images (lesson 06) the same idea becomes checkerboard and channel masks.

# %%
for name, m in [
    ("half_mask(6)", half_mask(6)),
    ("half_mask(6, first=False)", half_mask(6, first=False)),
    ("parity_mask(6, 0)", parity_mask(6, 0)),
    ("parity_mask(6, 1)", parity_mask(6, 1)),
]:
    print(f"{name:<26}", "".join("c" if c else "T" for c in m), "  (c = copied, T = transformed)")

# %% [markdown]
# ## 4. Maximum likelihood, written out
#
# Given samples $x_1, \dots, x_N$ of an unknown density $p$, we choose the flow's
# parameters $\theta$ to make the data likely: minimise the mean negative
# log-likelihood
#
# $$L(\theta) = -\frac1N \sum_{n=1}^N \log q_\theta(x_n)
# = -\frac1N \sum_{n=1}^N \Big[\log \mathcal N\big(z_n; 0, I\big) + \ell_n\Big],
# \qquad z_n, \ell_n = f_\theta(x_n),$$
#
# where $\ell_n$ is the flow's `logdet`. Every layer's `backward` takes $\partial L/\partial z$ and
# $\partial L / \partial \ell$ and returns $\partial L/\partial x$, adding the parameter
# gradients to `layer.grads` on the way (lesson 03 derives it for the affine coupling).
# So we need only the two gradients at the top:
#
# $$\log \mathcal N(z; 0, I) = -\tfrac12 \|z\|^2 - \tfrac D2 \log 2\pi
# \;\;\Longrightarrow\;\;
# \frac{\partial L}{\partial z_n} = \frac{z_n}{N}, \qquad \frac{\partial L}{\partial \ell_n} = -\frac1N.$$
#
# The second one says: every unit of log-det is rewarded equally; the first pulls
# each latent towards the origin. Here is one training loop with nothing hidden,
# on the reference model R2 (`minflow.zoo.realnvp_2d`: 8 affine couplings, the
# recipe of [`docs/reference-problems.md`](../docs/reference-problems.md)): fresh batches of 512 exact samples, Adam at
# learning rate $10^{-3}$.

# %%
model = realnvp_2d(n_layers=8, seed=0)  # float32, every coupling starts as the identity
optimizer = Adam(model.params, model.grads, lr=1e-3)
rng_data = make_rng(1)
losses = []
start = time.perf_counter()
for step in range(N_STEPS):
    x_batch = moons.sample(BATCH, rng_data)  # (N, 2), float32
    n = x_batch.shape[0]
    model.zero_grads()  # gradients accumulate: reset them first
    z, logdet = model.flow.forward(x_batch)  # (N, 2), (N,)
    loss = -(model.base.log_prob(z) + logdet).mean()  # mean NLL in nats
    dz = z / n  # dL/dz
    dlogdet = np.full(n, -1.0 / n, dtype=z.dtype)  # dL/dlogdet
    model.flow.backward(dz, dlogdet)  # fills model.grads
    optimizer.step()  # theta <- theta - lr * Adam direction
    losses.append(float(loss))
history_explicit = {"step": list(range(N_STEPS)), "loss": losses, "seconds": time.perf_counter() - start}

nll_explicit = float(model.nll(x_test_moons))
print(f"batch NLL: first {losses[0]:.3f}, mean of the last 50 {np.mean(losses[-50:]):.3f}")
print(f"test NLL {nll_explicit:.4f} nats, entropy H(p) {moons.entropy:.4f}, gap {nll_explicit - moons.entropy:.4f}")
viz.plot_loss(history_explicit, entropy=moons.entropy, path=f"{FIGDIR}/02_loss.png")

# %% [markdown]
# `FlowModel.nll_and_backward(x)` is exactly the five lines in the middle of that
# loop, and `minflow.train.fit_samples` is the loop itself (same data stream for
# the same seed, plus a progress bar and a check that the loss stays finite). Ten
# steps of each, from the same initialisation, land on the same parameters:

# %%
model_a, model_b = realnvp_2d(seed=0), realnvp_2d(seed=0)
opt_a = Adam(model_a.params, model_a.grads, lr=1e-3)
rng_a = make_rng(1)
for step in range(10):
    x_batch = moons.sample(BATCH, rng_a)
    model_a.zero_grads()
    model_a.nll_and_backward(x_batch)
    opt_a.step()
fit_samples(model_b, moons.sample, 10, batch_size=BATCH, lr=1e-3, seed=1, progress=False)
diff_loop = max(float(np.abs(model_a.params[k] - model_b.params[k]).max()) for k in model_a.params)
print(f"nll_and_backward loop vs fit_samples after 10 steps: max parameter difference {diff_loop:.1e}")
assert diff_loop < 1e-6

# %% [markdown]
# From here on we use `fit_samples`.
#
# ## 5. How good is the fit? The gap to the entropy
#
# The expected NLL splits into two terms (add and subtract $\log p$):
#
# $$\mathbb E_{p}\big[-\log q(x)\big]
# = \underbrace{\mathbb E_{p}\big[-\log p(x)\big]}_{H(p)}
# + \underbrace{\mathbb E_{p}\Big[\log \frac{p(x)}{q(x)}\Big]}_{\mathrm{KL}(p\,\|\,q)\;\ge\;0}.$$
#
# For the toy densities the entropy $H(p)$ is known (`toy.entropy`), so the test NLL
# minus $H$ estimates $\mathrm{KL}(p\,\|\,q)$: zero for a perfect model, never
# negative except by Monte-Carlo noise. It is an absolute scale, unlike the NLL
# itself. We train R2 on four densities and compare with the same model written in
# PyTorch ([`docs/reference-problems.md`](../docs/reference-problems.md), 5,000 steps).

# %%
PYTORCH_GAP = {"gaussians8": 0.086, "checkerboard": 0.179, "rings": 0.457, "moons": 0.022}  # 5,000 steps

results = {}
for name in DATASETS:
    toy = get_toy(name)
    if name == "moons":  # already trained above, with the same recipe
        model_d, history = model, history_explicit
    else:
        model_d = realnvp_2d(n_layers=8, seed=0)
        history = fit_samples(model_d, toy.sample, N_STEPS, batch_size=BATCH, lr=1e-3, seed=1, progress=False)
    x_test = toy.sample(N_TEST, make_rng(123))
    nll_each = -model_d.log_prob(x_test).astype(np.float64)  # (N_TEST,)
    gap, se = nll_each.mean() - toy.entropy, nll_each.std() / math.sqrt(N_TEST)
    results[name] = {"model": model_d, "history": history, "gap": gap, "se": se, "first": history["loss"][0]}
    print(f"{name}: trained {N_STEPS} steps in {history['seconds']:.1f} s")

if FAST:
    print(f"\n(fast mode: {N_STEPS} steps, far from converged; the PyTorch column is after 5,000 steps)")
print(f"\n{'dataset':<13} {'H(p)':>7} {'test NLL':>9} {'NLL - H':>8} {'+-':>6} {'PyTorch, 5k steps':>18}")
for name in DATASETS:
    r = results[name]
    h = get_toy(name).entropy
    print(f"{name:<13} {h:7.4f} {h + r['gap']:9.4f} {r['gap']:8.4f} {r['se']:6.4f} {PYTORCH_GAP[name]:18.3f}")

# %% [markdown]
# Now compare densities: the model's $q(x)$ next to the true $p(x)$ on the same
# colour scale (`minflow.viz.plot_density_comparison`).

# %%
for name in DATASETS:
    r = results[name]
    fig = viz.plot_density_comparison(
        r["model"], get_toy(name), gap=r["gap"], n=GRID, path=f"{FIGDIR}/02_density_{name}.png"
    )
    display(fig)

# %% [markdown]
# The moons and the eight Gaussians are matched well. The checkerboard's sharp
# edges and the rings' thin annuli are not: an affine coupling with a $\tanh$-bounded
# scale changes the density smoothly and by a bounded factor per layer, and eight
# layers cannot carve a sharp edge or open a hole in the middle of a Gaussian
# without tearing it (a flow is a continuous bijection: it can squeeze the mass
# between two rings very thin, never cut it). That is a property of the model
# family, not a bug: more layers, more expressive couplings (splines, Durkan et al.
# 2019) or continuous-time flows (FFJORD) close the gap.
#
# ## 6. Watching the flow, layer by layer
#
# `Flow.forward_steps(x)` returns every intermediate representation. Top row: data
# pushed towards the Gaussian (density direction); bottom row: Gaussian samples
# pulled back into data (sampling direction). Each coupling moves points along one
# axis only, the one it transforms.

# %%
viz.plot_warping(results["moons"]["model"], moons, path=f"{FIGDIR}/02_warping.png")

# %% [markdown]
# **Interactive version.** In a live notebook (Jupyter with `ipywidgets`, which
# `requirements.txt` installs), drag the slider below to move through the layers one
# at a time. On a static page (a notebook viewed on a repository host or
# nbviewer) the slider does not render: the static figure above shows the same
# layers, all at once.

# %%
try:
    from ipywidgets import IntSlider, interact
except ImportError:
    interact = None

warp_model = results["moons"]["model"]
warp_x = moons.sample(2000, make_rng(7))
warp_steps = warp_model.flow.forward_steps(warp_x)  # [x, h1, ..., z]: 9 arrays of (2000, 2)
warp_colour = warp_x[:, 0]


def show_layer(layer=0):
    pts = warp_steps[layer]
    _, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(pts[:, 0], pts[:, 1], s=3, c=warp_colour, cmap="plasma")
    ax.set(
        xlim=(-4.5, 4.5), ylim=(-4.5, 4.5), aspect="equal", title="data x" if layer == 0 else f"after layer {layer - 1}"
    )
    plt.show()


if interact is None:
    print("ipywidgets is not installed: see the static figure above (pip install ipywidgets).")
else:
    interact(show_layer, layer=IntSlider(value=0, min=0, max=len(warp_model.flow), step=1))

# %% [markdown]
# ## Check yourself

# %%
rows = [
    ("inline coupling vs AffineCoupling", diff_inline, "< 1e-12", diff_inline < 1e-12),
    ("log-det vs slogdet(J)", check_logdet(layer, x).max_error, "< 1e-6", check_logdet(layer, x).ok),
    (
        "explicit loop: batch NLL went down",
        losses[0] - np.mean(losses[-50:]),
        "> 0.3",
        losses[0] - np.mean(losses[-50:]) > 0.3,
    ),
    ("nll_and_backward loop vs fit_samples", diff_loop, "< 1e-6", diff_loop < 1e-6),
    ("affine beats additive on moons", nice_rows[0][1] - nice_rows[1][1], "> 0", nice_rows[1][1] < nice_rows[0][1]),
]
for name in DATASETS:
    r = results[name]
    rows.append((f"{name}: NLL - H >= 0 (up to 4 s.e.)", r["gap"], f">= {-4 * r['se']:.3f}", r["gap"] >= -4 * r["se"]))
    rows.append(
        (
            f"{name}: NLL went down",
            r["first"] - (r["gap"] + get_toy(name).entropy),
            "> 0",
            r["gap"] + get_toy(name).entropy < r["first"],
        )
    )
if not FAST:
    rows.append(("moons gap after 5,000 steps", results["moons"]["gap"], "< 0.1", results["moons"]["gap"] < 0.1))
print(f"{'claim':<42} {'value':>9}  {'wanted':>9}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<42} {value:9.4f}  {wanted:>9}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - A coupling copies $x_a$ and transforms $x_b$ elementwise with parameters
#   computed from $x_a$: its Jacobian is block triangular, its log-det is
#   $\sum_j s_j(x_a)$, and its inverse never inverts the network.
# - NICE's additive coupling is volume preserving ($\log|\det J| = 0$); RealNVP's
#   affine coupling adds a scale and fits sharper densities.
# - Layers alternate masks so every coordinate gets transformed.
# - Maximum likelihood needs only $\partial L/\partial z = z/N$ and
#   $\partial L/\partial \ell = -1/N$ at the top of the flow; each layer's
#   `backward` does the rest.
# - Test NLL minus the true entropy is $\mathrm{KL}(p\,\|\,q) \ge 0$, an absolute
#   measure of fit; 8 affine couplings match smooth densities closely and leave a
#   visible gap on sharp ones (checkerboard, rings).
#
# **Read more.** Dinh, Krueger & Bengio (2014), *NICE: non-linear independent
# components estimation*, arXiv:1410.8516; Dinh, Sohl-Dickstein & Bengio (2016),
# *Density estimation using Real NVP*, arXiv:1605.08803, sections 3.2-3.5;
# Papamakarios et al. (2021), arXiv:1912.02762, section 3.4 (coupling layers);
# Durkan, Bekasov, Murray & Papamakarios (2019), *Neural spline flows*,
# arXiv:1906.04032.
#
# ## Exercises
#
# The checks are defined in the next cell; leave an answer at `None` to skip it.
# Solutions are in the appendix at the end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.

layer_ex = AffineCoupling(2, parity_mask(2, 0), hidden=(16, 16), dtype=np.float64, rng=make_rng(5))
randomise(layer_ex, seed=5)  # the layer of exercise 1


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with your function).")
        return
    z = np.random.default_rng(11).standard_normal((64, 2)) * 2
    x_ref, logdet_ref = layer_ex.inverse(z)
    out = answer(z)
    assert isinstance(out, tuple) and len(out) == 2, "Return a pair (x, logdet), like layer.inverse does."
    x_got, logdet_got = np.asarray(out[0]), np.asarray(out[1])
    assert x_got.shape == z.shape and logdet_got.shape == (64,), (
        f"Expected x of shape {z.shape} and logdet of shape (64,); got {x_got.shape} and {logdet_got.shape}."
    )
    if np.allclose(logdet_got, -logdet_ref, atol=1e-10):
        raise AssertionError("The log-det has the wrong sign: the inverse divides by exp(s), so it is -sum(s).")
    assert np.allclose(x_got[:, layer_ex.mask], z[:, layer_ex.mask], atol=1e-12), (
        "The copied coordinate must come through unchanged: x_a = z_a."
    )
    assert np.allclose(x_got, x_ref, atol=1e-10), (
        "x_b is not right. Undo the forward steps in reverse order: first subtract t, then divide by exp(s) "
        "(both computed from z_a)."
    )
    assert np.allclose(logdet_got, logdet_ref, atol=1e-10), "x is right, but the log-det is not: it is -sum_j s_j."
    print("Exercise 1: correct! x_b = (z_b - t) * exp(-s), logdet = -sum(s).")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    assert int(answer) == answer, f"Give a whole number of layers; got {answer!r}."
    if answer < 3:
        raise AssertionError(
            f"With {int(answer)} layer(s), some output still ignores some input. Build the flow "
            "Flow([AffineCoupling(4, half_mask(4, first=(k % 2 == 0)), rng=rng) ...]) with random weights, compute its "
            "Jacobian with the `jacobian` helper, and look for zeros."
        )
    assert answer == 3, f"{int(answer)} layers work, but fewer would already do: find the smallest number."
    print("Exercise 2: correct! After 2 layers z_3 still misses x_4 (and z_4 misses x_3); a 3rd layer mixes them.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    if abs(value - 1 / math.sqrt(2 * math.pi)) < 1e-4:
        raise AssertionError("That is the peak of a 1D standard normal; the base here is 2D.")
    if abs(value - 1.0) < 1e-4:
        raise AssertionError(
            "A density is not bounded by 1. With logdet = 0, q(x) = N(f(x); 0, I): how large can that be?"
        )
    assert abs(value - 1 / (2 * math.pi)) < 1e-4, (
        f"Not yet (you gave {value:.4f}). With logdet = 0, q(x) = N(f(x); 0, I_2). Where is a Gaussian largest?"
    )
    print("Exercise 3: correct! q(x) = N(f(x)) <= N(0) = 1/(2 pi) = 0.159: volume preservation caps the density.")


# %% [markdown]
# ### Exercise 1: the inverse of an affine coupling
#
# Write `my_affine_inverse(z)` that inverts `layer_ex` (an `AffineCoupling` on 2D
# with random weights, defined in the checks cell) using only `layer_ex.mask` and
# `layer_ex.net.forward`, and returns `(x, logdet)` with `logdet` $= \log|\det \partial x/\partial z|$,
# like `layer_ex.inverse`. Start from `my_affine_forward` above.

# %%
answer_1 = None  # your function z -> (x, logdet)
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: how many layers until everything mixes?
#
# In $D = 4$, stack affine couplings that alternate `half_mask(4)` (copy $x_1, x_2$)
# and `half_mask(4, first=False)` (copy $x_3, x_4$). What is the smallest number of
# layers after which *every* output coordinate depends on *every* input
# coordinate (the Jacobian has no structural zeros)? Reason with the dependency
# sets, then confirm with the `jacobian` helper.

# %%
answer_2 = None  # a whole number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: the ceiling of a volume-preserving flow
#
# A flow built only from additive couplings (and permutations) over a 2D standard
# normal base: what is the largest value its density $q(x)$ can take, anywhere?

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
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# **1.** Undo the forward pass in reverse order; $s$ and $t$ come from $z_a = x_a$.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_1(z):
    mask = layer_ex.mask
    z_a, z_b = z[:, mask], z[:, ~mask]
    d_b = z_b.shape[1]
    h = layer_ex.net.forward(z_a)
    s, t = np.tanh(h[:, :d_b]), h[:, d_b:]
    x = np.empty_like(z)
    x[:, mask] = z_a
    x[:, ~mask] = (z_b - t) * np.exp(-s)
    return x, -s.sum(axis=1)


check_exercise_1(solution_1)

# %% [markdown]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# **2.** Track which inputs each coordinate depends on. Layer 1 copies $\{1,2\}$:
# $z_3 \leftarrow \{1,2,3\}$, $z_4 \leftarrow \{1,2,4\}$. Layer 2 transforms $1, 2$
# from $z_3, z_4$: $z_1, z_2 \leftarrow \{1,2,3,4\}$, but $z_3$ still misses $x_4$.
# Layer 3 transforms $3, 4$ from $z_1, z_2$, which see everything. Three layers.
# The Jacobians confirm it:
#
# </details>

# %% jupyter={"source_hidden": true}
def dependency_pattern(n_layers):
    layers = [
        AffineCoupling(4, half_mask(4, first=(k % 2 == 0)), hidden=(8,), dtype=np.float64, rng=make_rng(k))
        for k in range(n_layers)
    ]
    flow = Flow(layers)
    randomise(flow, seed=3)
    J = jacobian(lambda v: flow.forward(v)[0], np.random.default_rng(4).standard_normal(4))
    return (np.abs(J) > 1e-9).astype(int)


for n_layers in (1, 2, 3):
    print(f"{n_layers} layer(s): nonzero pattern of dz/dx\n{dependency_pattern(n_layers)}")
solution_2 = next(k for k in range(1, 6) if dependency_pattern(k).all())
check_exercise_2(solution_2)

# %% [markdown]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# **3.** With $\log|\det J| = 0$ everywhere, $q(x) = \mathcal N(f(x); 0, I_2) \le \mathcal N(0; 0, I_2) = 1/(2\pi)$.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_3 = math.exp(StandardNormal((2,)).log_prob(np.zeros((1, 2)))[0])
check_exercise_3(solution_3)
