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
# # 03 · Backprop by hand: the affine coupling's backward pass
#
# minflow has no automatic differentiation: every layer carries a hand-written
# `backward`. This lesson derives the one of RealNVP's affine coupling, including
# the path through its log-determinant, writes it out, and proves it right the way
# every minflow layer is proved right: against finite differences.
#
# **You will learn to**
# 1. say what a flow layer's backward receives ($\partial L/\partial z$ *and* $\partial L/\partial \ell$) and returns;
# 2. derive the backward pass of an affine coupling step by step, log-det term included;
# 3. decide what the forward pass must cache, and why;
# 4. check a backward with `minflow.gradcheck` (error table, Taylor-remainder orders) and recognise a bug in them;
# 5. derive the backward of the inverse pass.
#
# **Time:** about 60 minutes. **Prerequisites:** lessons 01 and 02; the chain rule
# for vectors.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.backend import make_rng
from minflow.data.toy2d import get_toy
from minflow.distributions import StandardNormal
from minflow.flows import AffineCoupling, Flow, half_mask
from minflow.gradcheck import gradcheck, taylor_test
from minflow.model import FlowModel
from minflow.optim import Adam
from minflow.zoo import realnvp_2d

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_CHECK = 4 if FAST else 8  # samples in the gradient checks
N_STEPS = 100 if FAST else 1000  # training steps with the hand-written backward
EPSILONS = (1e-1, 5e-2, 2.5e-2, 1.25e-2, 6.25e-3, 3.125e-3) if FAST else tuple(1e-1 / 2**k for k in range(10))

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)


# %% [markdown]
# ## 1. What a flow layer's backward computes
#
# A layer maps $(x, \theta) \mapsto (z, \ell)$: the output $z$ of shape $(N, D)$ and
# the log-determinant $\ell = \log|\det \partial z/\partial x|$ of shape $(N,)$. Some
# loss $L$ downstream depends on **both**: maximum likelihood (lesson 02) is
#
# $$L = -\frac1N \sum_n \Big[\log \mathcal N(z_n) + \ell_n\Big]
# \quad\Rightarrow\quad
# \delta z := \frac{\partial L}{\partial z} = \frac{z}{N}, \qquad
# \delta \ell := \frac{\partial L}{\partial \ell} = -\frac1N\,\mathbf 1.$$
#
# In a deep flow, $z$ feeds the next layer and $\ell$ is added to the other layers'
# log-dets, so every layer receives the same $\delta\ell$ (see `Flow.backward`).
#
# `dx = layer.backward(dz, dlogdet)` gets $\delta z$ and $\delta\ell$ and returns the
# vector-Jacobian product
#
# $$\frac{\partial L}{\partial x_{ni}}
# = \sum_{m,k} \delta z_{mk}\, \frac{\partial z_{mk}}{\partial x_{ni}}
# + \sum_m \delta\ell_m\, \frac{\partial \ell_m}{\partial x_{ni}},$$
#
# and **adds** $\partial L/\partial\theta$ to `layer.grads` (gradients accumulate;
# `zero_grads()` resets them). Samples do not interact, so only $m = n$ terms survive.
# The Jacobian itself is never built: we follow the forward pass backwards, one
# small step at a time.
#
# ## 2. The forward pass as small steps
#
# For an affine coupling with mask $(a, b)$, one sample at a time, $j$ indexing
# the $D_b$ transformed coordinates:
#
# | step | forward | shape |
# |---|---|---|
# | 1 | $x_a, x_b$ = split $x$ by the mask | $(N, D_a), (N, D_b)$ |
# | 2 | $h = \mathrm{net}(x_a)$ | $(N, 2D_b)$ |
# | 3 | $\tilde s = h_{:, :D_b}$, $\;t = h_{:, D_b:}$ | $(N, D_b)$ each |
# | 4 | $s = \tanh \tilde s$ | $(N, D_b)$ |
# | 5 | $e = \exp s$ | $(N, D_b)$ |
# | 6 | $z_b = x_b \odot e + t$ | $(N, D_b)$ |
# | 7 | $z_a = x_a$ | $(N, D_a)$ |
# | 8 | $\ell = \sum_j s_j$ | $(N,)$ |
#
# ## 3. The backward pass, step by step from the bottom
#
# Write $\bar v$ for $\partial L / \partial v$. We know $\bar z_a, \bar z_b$ (the two
# halves of $\delta z$) and $\bar\ell = \delta\ell$.
#
# **Step 8**, $\ell = \sum_j s_j$: $\partial \ell/\partial s_j = 1$, so every $s_j$
# receives $\bar\ell$: $\;\bar s_j \mathrel{+}= \bar\ell$.
#
# **Step 6**, $z_{b,j} = x_{b,j} e_j + t_j$: each output entry depends on one entry of
# each input, so
#
# $$\bar x_{b,j} = \bar z_{b,j}\, e_j, \qquad \bar t_j = \bar z_{b,j}, \qquad \bar e_j = \bar z_{b,j}\, x_{b,j}.$$
#
# **Step 5**, $e_j = \exp s_j$: $de_j/ds_j = e_j$, so $\bar s_j \mathrel{+}= \bar e_j\, e_j = \bar z_{b,j}\, x_{b,j}\, e_j$.
# Together with step 8:
#
# $$\boxed{\;\bar s = \bar z_b \odot x_b \odot e \;+\; \bar\ell\,\mathbf 1^\top\;}$$
#
# (the second term broadcasts the $(N,)$ vector $\bar\ell$ over the $D_b$ columns).
# **This is the log-det's contribution**: forget it and the gradient is wrong
# while everything else looks fine.
#
# **Step 4**, $s = \tanh\tilde s$: $\tanh' = 1 - \tanh^2$, so
# $\;\bar{\tilde s} = \bar s \odot (1 - s^2)$.
#
# **Step 3**: the two halves of $\bar h$ are $\bar{\tilde s}$ and $\bar t$, side by side.
#
# **Step 2**, $h = \mathrm{net}(x_a)$: the network's own backward,
# $\bar x_a^{(\mathrm{net})} = \mathrm{net.backward}(\bar h)$, which also accumulates the
# gradients of its weights. For one linear layer $y = xW + b$, the same reasoning gives
# $\bar x = \bar y W^\top$, $\bar W = x^\top \bar y$, $\bar b = \sum_n \bar y_n$; for
# ReLU, $\bar x = \bar y \odot [x > 0]$ (see `minflow/nn/linear.py`, `activations.py`).
#
# **Step 7**, $z_a = x_a$: $x_a$ is used twice (copied, and fed to the network), and
# the gradients of a variable used twice **add**:
#
# $$\bar x_a = \bar z_a + \mathrm{net.backward}(\bar h).$$
#
# **Step 1**: put $\bar x_a$ and $\bar x_b$ back in their places.
#
# **What must the forward pass cache?** The backward reads $x_b$ (step 6), $e$
# (steps 5 and 6) and $s = \tanh\tilde s$ (step 4); the network caches its own
# inputs. Caching them costs three $(N, D_b)$ arrays; recomputing them would cost a
# second pass through the network.
#
# ## 4. Writing it
#
# Here is the complete backward, written as a subclass of minflow's
# `AffineCoupling` that replaces its `forward` (to keep our own cache) and its
# `backward`. If you want to write it yourself first, cover the cell, start from the
# boxed formulas and come back.

# %%
class MyAffineCoupling(AffineCoupling):
    # RealNVP affine coupling with a backward written from the derivation above

    def forward(self, x):
        x_a, x_b = x[:, self.mask], x[:, ~self.mask]  # 1. split: (N, Da), (N, Db)
        h = self.net.forward(x_a)  # 2. conditioner: (N, 2 Db)
        s_raw, t = h[:, : self.db], h[:, self.db :]  # 3. (N, Db) each
        s = np.tanh(s_raw)  # 4. bounded log-scale
        e = np.exp(s)  # 5.
        z = np.empty_like(x)
        z[:, ~self.mask] = x_b * e + t  # 6.
        z[:, self.mask] = x_a  # 7.
        self.my_cache = (x_b, e, s)  # what the backward needs
        return z, s.sum(axis=1)  # 8. logdet: (N,)

    def backward(self, dz, dlogdet):
        x_b, e, s = self.my_cache
        dz_a, dz_b = dz[:, self.mask], dz[:, ~self.mask]
        dx_b = dz_b * e  # 6. through z_b = x_b * e + t
        dt = dz_b  # 6.
        ds = dz_b * x_b * e + dlogdet[:, None]  # 5. and 8.: through e = exp(s) and logdet = sum(s)
        ds_raw = ds * (1 - s**2)  # 4. tanh' = 1 - tanh^2
        dh = np.concatenate([ds_raw, dt], axis=1)  # 3. (N, 2 Db)
        dx_a = dz_a + self.net.backward(dh)  # 2. and 7.: x_a is copied AND feeds the net
        dx = np.empty_like(dz)
        dx[:, self.mask], dx[:, ~self.mask] = dx_a, dx_b  # 1.
        return dx


def randomise(module, scale=0.5, seed=0):
    # non-zero parameters: a fresh coupling's last layer is zero, which would hide bugs
    rng_params = np.random.default_rng(seed)
    for p in module.params.values():
        p[...] = scale * rng_params.standard_normal(p.shape)


D = 4
mine = MyAffineCoupling(D, half_mask(D), hidden=(16, 16), dtype=np.float64, rng=make_rng(0))
theirs = AffineCoupling(D, half_mask(D), hidden=(16, 16), dtype=np.float64, rng=make_rng(0))
randomise(mine)
randomise(theirs)  # same seed: the same parameters

rng = np.random.default_rng(1)
x = rng.standard_normal((N_CHECK, D))
dz, dlogdet = rng.standard_normal((N_CHECK, D)), rng.standard_normal(N_CHECK)

outputs, grads = [], []
for layer in (mine, theirs):
    layer.zero_grads()
    z, logdet = layer.forward(x)
    dx = layer.backward(dz, dlogdet)
    outputs.append((z, logdet, dx))
    grads.append(layer.grads)
diff_out = max(np.abs(a - b).max() for a, b in zip(*outputs))
diff_grads = max(np.abs(grads[0][k] - grads[1][k]).max() for k in grads[0])
print(f"mine vs minflow: outputs and dx differ by {diff_out:.1e}, parameter gradients by {diff_grads:.1e}")
print("parameters with gradients:", ", ".join(f"{k} {v.shape}" for k, v in grads[0].items()))
assert diff_out < 1e-12 and diff_grads < 1e-12

# %% [markdown]
# **Side by side with `torch.autograd` (optional).** If you know PyTorch: autograd
# records the forward pass and runs these backward steps for you. The next cell writes
# the same coupling's forward in torch operations, with the same parameters, and asks
# `torch.autograd.grad` for the gradients of $L = \sum \bar z \odot z + \sum \bar\ell\,\ell$
# (so that $\partial L/\partial z$ is the `dz` and $\partial L/\partial\ell$ the `dlogdet`
# we passed to `backward`). It runs only where PyTorch is installed (minflow never
# needs it) and says so otherwise.

# %%
try:
    import torch
except ImportError:
    torch = None


def autograd_gradients(layer, x, dz, dlogdet):
    # layer's forward in torch operations (an MLP with hidden=(16, 16)), then autograd of
    # L = sum(dz * z) + sum(dlogdet * logdet); returns dL/dx and {name: dL/dparam} as NumPy
    params = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}  # float64 copies
    x_t = torch.tensor(x, requires_grad=True)  # (N, D)
    a, b = torch.tensor(layer.mask), torch.tensor(~layer.mask)  # copied / transformed coordinates
    h = torch.relu(x_t[:, a] @ params["net.linear0.W"] + params["net.linear0.b"])  # (N, 16)
    h = torch.relu(h @ params["net.linear1.W"] + params["net.linear1.b"])  # (N, 16)
    h = h @ params["net.linear2.W"] + params["net.linear2.b"]  # (N, 2 Db)
    s, t = torch.tanh(h[:, : layer.db]), h[:, layer.db :]  # (N, Db) each
    z_b, logdet = x_t[:, b] * torch.exp(s) + t, s.sum(dim=1)  # (N, Db), (N,); z_a = x_a
    dz_t, dlogdet_t = torch.tensor(dz), torch.tensor(dlogdet)
    loss = (dz_t[:, a] * x_t[:, a]).sum() + (dz_t[:, b] * z_b).sum() + (dlogdet_t * logdet).sum()
    names = list(params)
    grads = torch.autograd.grad(loss, [x_t] + [params[k] for k in names])  # reverse mode, automatically
    return grads[0].numpy(), {k: g.numpy() for k, g in zip(names, grads[1:])}


if torch is None:
    print("PyTorch is not installed: the optional autograd comparison is skipped (pip install torch to run it).")
else:
    auto_dx, auto_grads = autograd_gradients(mine, x, dz, dlogdet)
    mine.zero_grads()
    mine.forward(x)
    dx_mine = mine.backward(dz, dlogdet)  # reverse mode, by hand
    diff_dx = np.abs(auto_dx - dx_mine).max()
    diff_params = max(np.abs(auto_grads[k] - mine.grads[k]).max() for k in auto_grads)
    print(f"torch.autograd vs our backward: dx differs by {diff_dx:.1e}, parameter gradients by {diff_params:.1e}")
    assert diff_dx < 1e-12 and diff_params < 1e-12

# %% [markdown]
# Agreeing with minflow only shows that we made the same choices. Whether those are
# *right* is decided by finite differences.
#
# ## 5. Checking it: finite differences and the Taylor test
#
# `minflow.gradcheck.gradcheck` builds one scalar that exercises both outputs,
# $L = \sum \delta z \odot z + \sum \delta\ell \odot \ell$ with fixed random
# $\delta z, \delta\ell$ (so $\partial L/\partial z = \delta z$ and
# $\partial L/\partial \ell = \delta\ell$ exactly), and compares our backward with
# central differences for the input and every parameter entry:
#
# $$\frac{\partial L}{\partial \theta_i} \approx \frac{L(\theta + h e_i) - L(\theta - h e_i)}{2h},
# \qquad \text{error } O(h^2),$$
#
# in float64 with $h = 10^{-5}$, reporting the norm-wise relative error
# $\|g_a - g_n\| / (\|g_a\| + \|g_n\|)$, which must stay below $10^{-6}$. It also
# checks the log-det against `slogdet` of the brute-force Jacobian, and the round trip.

# %%
report = gradcheck(mine, x, directions=("forward",))
assert report.ok

# %% [markdown]
# The **Taylor-remainder test** checks the input gradient $g$ along one random
# direction $v$ without choosing a step $h$:
#
# $$r_0(\varepsilon) = |L(x + \varepsilon v) - L(x)| = O(\varepsilon), \qquad
# r_1(\varepsilon) = |L(x + \varepsilon v) - L(x) - \varepsilon\, \langle g, v\rangle| = O(\varepsilon^2)$$
#
# if and only if $g$ is the true gradient. Halving $\varepsilon$ should halve $r_0$
# and quarter $r_1$: observed orders 1 and 2 (the median over the halvings; at the
# largest steps a ReLU inside the network may switch, which spoils a row or two).

# %%
table, order0, order1 = taylor_test(mine, x, "forward", epsilons=EPSILONS)
print(table)
assert abs(order0 - 1) < 0.2 and abs(order1 - 2) < 0.2


# %% [markdown]
# ## 6. What a bug looks like
#
# The most common mistake in a flow's backward is to forget that the log-det depends
# on the parameters too: drop the $\bar\ell$ term from $\bar s$. A second classic is
# to forget a local derivative, here $\tanh'$. Both versions still run, and the
# loss may even go down; the checks catch them at once.

# %%
class ForgotLogdet(MyAffineCoupling):
    def backward(self, dz, dlogdet):
        return super().backward(dz, np.zeros_like(dlogdet))  # as if logdet did not depend on s


class ForgotTanh(MyAffineCoupling):
    def backward(self, dz, dlogdet):
        x_b, e, s = self.my_cache
        self.my_cache = (x_b, e, np.zeros_like(s))  # (1 - s^2) becomes 1
        return super().backward(dz, dlogdet)


bug_orders = {}
for cls in (ForgotLogdet, ForgotTanh):
    buggy = cls(D, half_mask(D), hidden=(16, 16), dtype=np.float64, rng=make_rng(0))
    randomise(buggy)
    print(f"--- {cls.__name__}")
    bug_report = gradcheck(buggy, x, directions=("forward",), verbose=False)
    print("\n".join(str(bug_report).splitlines()[: len(bug_report.rows) + 2]))  # the rows, not the details
    table, o0, o1 = taylor_test(buggy, x, "forward", epsilons=EPSILONS)
    print(table.splitlines()[-1], "\n")
    assert not bug_report.ok
    bug_orders[cls.__name__] = o1


# %% [markdown]
# With the wrong gradient, $r_1$ only falls like $\varepsilon$ (order 1): the
# linear term no longer cancels. The failing rows are everything upstream of $s$:
# the network's weights and the input (through $x_a$). The log-det and round-trip
# rows still pass, because the forward pass is right; only the backward is wrong.
# (`gradcheck` also prints, for each failing row, a table of the worst entries; we
# cut it here.)
#
# ## 7. Training with our own backward
#
# Swap `MyAffineCoupling` into the R2 model of lesson 02 (same initialisation,
# same data stream) and train both versions side by side: the losses agree to
# rounding, step by step.

# %%
def r2_with(cls, seed=0):
    # the R2 model of minflow.zoo.realnvp_2d, built from `cls` couplings
    rng_init = make_rng(seed)
    layers = [cls(2, np.arange(2) == k % 2, hidden=(64, 64), rng=rng_init) for k in range(8)]
    return FlowModel(Flow(layers), StandardNormal((2,)))


moons = get_toy("moons")
histories = {}
for label, model in [("hand-written backward", r2_with(MyAffineCoupling)), ("minflow", realnvp_2d(seed=0))]:
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    rng_data = make_rng(1)
    losses = []
    for step in range(N_STEPS):
        x_batch = moons.sample(512, rng_data)
        model.zero_grads()
        losses.append(float(model.nll_and_backward(x_batch)))
        optimizer.step()
    histories[label] = np.array(losses)
train_diff = np.abs(histories["hand-written backward"] - histories["minflow"]).max()
print(f"largest difference between the two loss curves over {N_STEPS} steps: {train_diff:.2e} nats")

fig, ax = plt.subplots(figsize=(7, 3.5))
for label, losses in histories.items():
    ax.plot(losses, label=label, lw=2 if label == "minflow" else 5, alpha=0.6)
ax.axhline(moons.entropy, color="k", ls="--", lw=1, label="entropy H(p)")
ax.set(xlabel="step", ylabel="batch NLL (nats)", title="R2 on moons, two backward passes")
ax.legend()
fig.tight_layout()
fig.savefig(f"{FIGDIR}/03_training.png")
plt.show()

# %% [markdown]
# The curves are identical: both versions do the same float32 operations in the same
# order. What the maximum-likelihood gradient *means* is visible in the boxed formula. With $\bar z_b = z_b / N$ and $\bar\ell = -1/N$,
#
# $$\bar s = \frac1N\big(z_b \odot x_b \odot e - 1\big) = \frac1N\big(z_b \odot (z_b - t) - 1\big).$$
#
# The log-det term pushes every scale up (expand, gain likelihood), the Gaussian
# term pushes it down (latents far from 0 are unlikely); at a stationary point with
# $t = 0$ they balance where $\mathbb E[z_b^2] = 1$: the layer standardises its output.
#
# ## 8. The backward of the inverse pass
#
# Sampling-based training (reverse KL, lesson 04) differentiates through the
# *inverse*, $x_b = (z_b - t) \odot e^{-s}$, $x_a = z_a$, with log-det
# $\ell' = -\sum_j s_j$ and $s, t$ computed from $z_a$. Given $\bar x$ and $\bar\ell'$,
# the same steps give
#
# $$\bar z_b = \bar x_b \odot e^{-s}, \qquad \bar t = -\bar x_b \odot e^{-s},$$
#
# and a $\bar s$ with two terms again, one through $x_b$ and one through $\ell'$
# (deriving it is exercise 2); then through $\tanh$ and the network exactly as
# before, and $\bar z_a = \bar x_a + \mathrm{net.backward}(\bar h)$.
# minflow's `AffineCoupling.inverse_backward` implements this; its gradient check:

# %%
inverse_report = gradcheck(theirs, x, directions=("inverse",))
table, inv_order0, inv_order1 = taylor_test(theirs, x, "inverse", epsilons=EPSILONS)
print(table)
assert inverse_report.ok

# %% [markdown]
# ## Check yourself

# %%
rows = [
    ("mine vs minflow: outputs and dx", diff_out, "< 1e-12", diff_out < 1e-12),
    ("mine vs minflow: parameter gradients", diff_grads, "< 1e-12", diff_grads < 1e-12),
    ("gradcheck: largest relative error", report.max_error, "< 1e-6", report.ok),
    ("Taylor test: order of r1", order1, "~ 2", abs(order1 - 2) < 0.2),
    ("bug (no dlogdet): order of r1", bug_orders["ForgotLogdet"], "~ 1", abs(bug_orders["ForgotLogdet"] - 1) < 0.2),
    ("bug (no tanh'): order of r1", bug_orders["ForgotTanh"], "~ 1", abs(bug_orders["ForgotTanh"] - 1) < 0.2),
    ("training: largest loss difference", train_diff, "< 1e-3", train_diff < 1e-3),
    ("inverse pass: gradcheck error", inverse_report.max_error, "< 1e-6", inverse_report.ok),
    ("inverse pass: order of r1", inv_order1, "~ 2", abs(inv_order1 - 2) < 0.2),
]
print(f"{'claim':<40} {'value':>10}  {'wanted':>8}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<40} {value:10.3g}  {wanted:>8}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - A flow layer's backward receives $\partial L/\partial z$ **and** $\partial L/\partial\ell$,
#   returns $\partial L/\partial x$ and accumulates $\partial L/\partial\theta$.
# - Follow the forward steps from the bottom, one local derivative each. For the
#   affine coupling the key line is $\bar s = \bar z_b \odot x_b \odot e^{s} + \bar\ell$:
#   the log-det term reaches the parameters through $s$.
# - A variable used twice gets the sum of both gradients ($\bar x_a = \bar z_a + \mathrm{net.backward}(\cdot)$).
# - Cache what the backward reads ($x_b$, $e^s$, $\tanh$), or pay a second network pass.
# - Check every backward with central differences in float64 and with the Taylor
#   test (orders 1 and 2); a missing term shows up as a failing row and an order-1 $r_1$.
#
# **Read more.** Dinh, Sohl-Dickstein & Bengio (2016), *Density estimation using
# Real NVP*, arXiv:1605.08803, section 3.3; Baydin, Pearlmutter, Radul & Siskind
# (2018), *Automatic differentiation in machine learning: a survey*, JMLR,
# arXiv:1502.05767 (reverse mode); the CS231n notes on backpropagation and gradient
# checks (cs231n.github.io/optimization-2, /neural-networks-3); Farrell, Ham, Funke
# & Rognes (2013), *Automated derivation of the adjoint of high-level transient
# finite element programs* (the Taylor test), arXiv:1204.5577.
#
# ## Exercises
#
# The checks are defined in the next cell; leave an answer at `None` to skip it.
# Solutions are in the appendix at the end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.
_rng_ex = np.random.default_rng(42)
N_EX, DB_EX = 6, 3


def _sigmoid(u):
    return 1 / (1 + np.exp(-u))


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with your function).")
        return
    ds, tanh_s = _rng_ex.standard_normal((N_EX, DB_EX)), np.tanh(_rng_ex.standard_normal((N_EX, DB_EX)))
    got = np.asarray(answer(ds, tanh_s))
    truth = (ds * tanh_s).sum(axis=0)
    if got.shape == (N_EX, DB_EX):
        raise AssertionError(
            f"Your gradient has shape {got.shape}, one row per sample; the parameter `scale` has shape "
            f"({DB_EX},). Every sample uses the same scale, so the per-sample contributions add up."
        )
    assert got.shape == (DB_EX,), f"dL/dscale must have the shape of scale, ({DB_EX},); got {got.shape}."
    assert np.allclose(got, truth, atol=1e-12), (
        "Not yet. With s = scale * tanh(s_raw), ds/dscale_j = tanh(s_raw)_j for every sample."
    )
    # and the real layer agrees
    layer = AffineCoupling(4, half_mask(4), hidden=(8,), learnable_scale=True, dtype=np.float64, rng=make_rng(3))
    randomise(layer, seed=3)
    report = gradcheck(layer, _rng_ex.standard_normal((5, 4)), directions=("forward",), verbose=False)
    assert report.ok, report
    print("Exercise 1: correct! dL/dscale = sum over the batch of ds * tanh(s_raw) (and minflow's gradcheck agrees).")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with your function).")
        return
    dx_b, x_b = _rng_ex.standard_normal((N_EX, DB_EX)), _rng_ex.standard_normal((N_EX, DB_EX))
    dlogdet = _rng_ex.standard_normal(N_EX)
    got = np.asarray(answer(dx_b, x_b, dlogdet))
    assert got.shape == (N_EX, DB_EX), f"ds has the shape of s, (N, Db) = {(N_EX, DB_EX)}; got {got.shape}."
    if np.allclose(got, -dx_b * x_b, atol=1e-12):
        raise AssertionError("The log-det of the inverse, -sum_j s_j, also depends on s: add its term.")
    if np.allclose(got, -dx_b * x_b + dlogdet[:, None], atol=1e-12):
        raise AssertionError("Check the sign of the log-det term: the inverse's log-det is MINUS sum_j s_j.")
    if np.allclose(got, dx_b * x_b - dlogdet[:, None], atol=1e-12):
        raise AssertionError("Check the sign of the first term: d/ds of (z_b - t) exp(-s) is -(z_b - t) exp(-s).")
    assert np.allclose(got, -dx_b * x_b - dlogdet[:, None], atol=1e-12), (
        "Not yet. x_b = (z_b - t) * exp(-s): differentiate in s, then add the log-det's term."
    )
    print("Exercise 2: correct! ds = -dx_b * x_b - dlogdet (as in AffineCoupling.inverse_backward).")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    dz_b, x_b, h = (_rng_ex.standard_normal((N_EX, DB_EX)) for _ in range(3))
    dlogdet = _rng_ex.standard_normal(N_EX)

    def loss(h_):  # L = sum(dz_b * z_b) + sum(dlogdet * logdet), the gradcheck scalar
        sig = _sigmoid(h_ + 2)
        return np.sum(dz_b * (x_b * sig)) + np.sum(dlogdet * np.log(sig).sum(axis=1))

    eps, numeric = 1e-6, np.zeros_like(h)
    for idx in np.ndindex(*h.shape):
        hp, hm = h.copy(), h.copy()
        hp[idx] += eps
        hm[idx] -= eps
        numeric[idx] = (loss(hp) - loss(hm)) / (2 * eps)
    got = np.asarray(answer(dz_b, dlogdet, x_b, h))
    assert got.shape == h.shape, f"dh has the shape of h, {h.shape}; got {got.shape}."
    sig = _sigmoid(h + 2)
    if np.allclose(got, dz_b * x_b * sig * (1 - sig), atol=1e-6):
        raise AssertionError("You have the z_b path; the log-det, sum_j log sigmoid(h_j + 2), depends on h too.")
    if np.allclose(got, dz_b * x_b * sig * (1 - sig) + dlogdet[:, None] * sig * (1 - sig), atol=1e-6):
        raise AssertionError("d/du log sigmoid(u) is not sigmoid'(u): divide by sigmoid(u) (chain rule through log).")
    err = np.abs(got - numeric).max() / (np.abs(numeric).max() + 1e-12)
    assert err < 1e-6, f"Not yet: relative error {err:.2e} against finite differences."
    print("Exercise 3: correct! dh = (dz_b * x_b * sigmoid + dlogdet) * (1 - sigmoid).")


# %% [markdown]
# ### Exercise 1: a learnable scale
#
# With `learnable_scale=True`, minflow's coupling uses $s = \sigma \odot \tanh\tilde s$
# with a learnable vector $\sigma$ of shape $(D_b,)$, shared by all samples. Given
# `ds` $= \bar s$ of shape $(N, D_b)$ and `tanh_s` $= \tanh\tilde s$, write
# `dscale(ds, tanh_s)` returning $\partial L/\partial\sigma$.

# %%
answer_1 = None  # your function (ds, tanh_s) -> dL/dscale
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: the inverse pass's $\bar s$
#
# Derive $\bar s$ for the inverse pass (section 8) yourself: write
# `ds_inverse(dx_b, x_b, dlogdet)` returning it, where `x_b` is the inverse's output
# half and `dlogdet` $= \bar\ell'$ has shape $(N,)$.

# %%
answer_2 = None  # your function (dx_b, x_b, dlogdet) -> ds
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: Glow's sigmoid scale
#
# Glow (Kingma & Dhariwal 2018) replaces $e^{\tanh\tilde s}$ by a sigmoid:
# $z_b = x_b \odot \sigma(h + 2) + t$, with log-det $\sum_j \log \sigma(h_j + 2)$,
# where $\sigma(u) = 1/(1 + e^{-u})$. Write `dh_sigmoid(dz_b, dlogdet, x_b, h)`
# returning $\bar h$. (Use $\sigma'(u) = \sigma(u)(1 - \sigma(u))$; lesson 08 compares
# this parameterisation with the others.)

# %%
answer_3 = None  # your function (dz_b, dlogdet, x_b, h) -> dh
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
# **1.** $\partial s_{nj}/\partial \sigma_j = \tanh\tilde s_{nj}$ for every sample $n$, and
# $\sigma_j$ is shared, so the contributions add: $\bar\sigma_j = \sum_n \bar s_{nj} \tanh\tilde s_{nj}$.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_1(ds, tanh_s):
    return (ds * tanh_s).sum(axis=0)


check_exercise_1(solution_1)

# %% [markdown]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# **2.** $\partial x_{b,j}/\partial s_j = -(z_{b,j} - t_j) e^{-s_j} = -x_{b,j}$ and
# $\partial\ell'/\partial s_j = -1$.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_2(dx_b, x_b, dlogdet):
    return -dx_b * x_b - dlogdet[:, None]


check_exercise_2(solution_2)

# %% [markdown]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# **3.** With $u = h + 2$ and $\sigma = \sigma(u)$: $\partial z_b/\partial u = x_b\,\sigma(1 - \sigma)$
# and $\partial \log\sigma(u)/\partial u = \sigma(1 - \sigma)/\sigma = 1 - \sigma$, so
# $\bar h = \bar z_b \odot x_b \odot \sigma(1-\sigma) + \bar\ell\,(1 - \sigma)$.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_3(dz_b, dlogdet, x_b, h):
    sig = _sigmoid(h + 2)
    return (dz_b * x_b * sig + dlogdet[:, None]) * (1 - sig)


check_exercise_3(solution_3)
