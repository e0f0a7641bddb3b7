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
# # 04 · Planar and radial flows: fitting an unnormalised density
#
# The first normalizing flows in machine learning (Rezende & Mohamed 2015) were
# stacks of very simple maps: each bends space along one direction (planar) or
# around one point (radial). Their log-determinants cost $O(D)$ thanks to one
# identity, the matrix determinant lemma. We use them for the task they were made
# for: approximating a density known only up to its normalising constant,
# $p(x) \propto e^{-U(x)}$, by minimising the reverse KL divergence.
#
# **You will learn to**
# 1. derive the log-det of a planar layer with the matrix determinant lemma, and that of a radial layer in polar coordinates;
# 2. see why a planar layer needs the constraint $w^\top \hat u > -1$, and how minflow enforces it;
# 3. derive the backward pass of the planar layer's sampling map;
# 4. train a flow by **reverse KL** on an energy, through the inverse (sampling) pass;
# 5. read $\mathrm{KL}(q\,\|\,p)$ against depth $K = 2, 8, 32$ and compare with a reference.
#
# **Time:** about 60 minutes (the full run trains twelve models for several minutes).
# **Prerequisites:** lessons 01 and 03 (the backward pass).

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.backend import make_rng, softplus
from minflow.data.energy import ENERGY_TARGETS, get_energy, grid_log_density, reverse_kl
from minflow.flows.planar import Planar
from minflow.flows.radial import Radial
from minflow.gradcheck import brute_force_logdet, gradcheck
from minflow.optim import Adam
from minflow.zoo.p2 import fit_reverse_kl, planar_2d, radial_2d

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_STEPS = 150 if FAST else 10_000  # reverse-KL steps per model (the P2 recipe: 10,000)
DEPTHS = (2, 8) if FAST else (2, 8, 32)  # numbers of planar layers K
TARGETS = ("U1", "U3") if FAST else ENERGY_TARGETS  # the energies of Rezende & Mohamed, Table 1
N_KL = 10_000 if FAST else 100_000  # samples for each KL estimate
GRID = 100 if FAST else 300  # cells per side of density pictures

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)

# %% [markdown]
# ## 1. The planar layer and its determinant
#
# A planar layer moves every point along one fixed direction $u \in \mathbb R^D$, by an
# amount that depends on which side of a hyperplane $w^\top z + b = 0$ it lies:
#
# $$x = g(z) = z + u\, \tanh(w^\top z + b).$$
#
# This is the **sampling** direction ($z \to x$), the one with a closed form, so in
# minflow it is the layer's `inverse`; `forward` ($x \to z$) is solved numerically
# (section 3).
#
# **Jacobian.** Differentiate component $i$ with respect to $z_j$:
# $\partial x_i/\partial z_j = \delta_{ij} + u_i\, \tanh'(w^\top z + b)\, w_j$, i.e.
#
# $$\frac{\partial x}{\partial z} = I + u\,\psi(z)^\top, \qquad \psi(z) = \tanh'(w^\top z + b)\, w = \big(1 - \tanh^2(w^\top z + b)\big)\, w.$$
#
# **Matrix determinant lemma.** For vectors $a, c$: $\det(I + a c^\top) = 1 + c^\top a$.
# *Proof.* $(I + a c^\top) a = a (1 + c^\top a)$, so $a$ is an eigenvector with eigenvalue
# $1 + c^\top a$; every $v$ with $c^\top v = 0$ (a $(D-1)$-dimensional subspace) is
# left unchanged, eigenvalue 1. If $c^\top a \neq 0$, $a$ is not in that subspace, so
# these are all $D$ eigenvalues and their product is $1 + c^\top a$ (the case
# $c^\top a = 0$ follows by continuity). Hence
#
# $$\log\left|\det\frac{\partial x}{\partial z}\right| = \log\left|1 + u^\top\psi(z)\right|,$$
#
# $O(D)$ work instead of the $O(D^3)$ of a general determinant. Check it:

# %%
rng = np.random.default_rng(0)
D = 5
u, w, b = rng.standard_normal(D), rng.standard_normal(D), 0.3
z = rng.standard_normal((4, D))


def planar_map(z):
    return z + np.tanh(z @ w + b)[:, None] * u  # (N, D)


psi = (1 - np.tanh(z @ w + b) ** 2)[:, None] * w  # (N, D)
lemma = np.log(np.abs(1 + psi @ u))  # (N,)
brute = brute_force_logdet(planar_map, z)  # slogdet of a finite-difference Jacobian
lemma_err = np.abs(lemma - brute).max()
print("lemma:      ", lemma)
print("brute force:", brute)
assert lemma_err < 1e-6

# %% [markdown]
# ## 2. When is it invertible? The constraint on $u$
#
# Write $\alpha = w^\top z$. Only the component of $z$ along $w$ decides the shift, so
# project the map onto $w$:
#
# $$w^\top x + b = (\alpha + b) + (w^\top u)\,\tanh(\alpha + b).$$
#
# As a function of $a = \alpha + b$, $a \mapsto a + m\tanh(a)$ with $m = w^\top u$ has
# derivative $1 + m \tanh'(a)$, and $\tanh' \in (0, 1]$. It is strictly increasing,
# hence invertible, for every $a$ if and only if $m > -1$ (at $m = -1$ it is still
# increasing but its slope vanishes at $a = 0$). The same condition makes
# $1 + u^\top\psi = 1 + m\tanh' > 0$, so the log-det is finite.
#
# Gradient descent does not respect constraints, so Rezende & Mohamed
# (appendix A.1) reparameterise: learn any $u$, and use
#
# $$\hat u = u + \big(m(w^\top u) - w^\top u\big)\frac{w}{\|w\|^2}, \qquad m(a) = -1 + \operatorname{softplus}(a).$$
#
# Then $w^\top \hat u = w^\top u + m(w^\top u) - w^\top u = m(w^\top u) > -1$, always.
# `Planar.u_hat()` returns $\hat u$:

# %%
layer = Planar(2, dtype=np.float64, rng=make_rng(1))
layer.params["w"][...] = [1.0, 0.5]
layer.params["u"][...] = [-4.0, 1.0]  # w.u = -3.5: this u would fold space
u_hat = layer.u_hat()
w_dot_u_hat = layer.params["w"] @ u_hat
print(
    f"w.u = {layer.params['w'] @ layer.params['u']:.3f}  ->  w.u_hat = {w_dot_u_hat:.4f} "
    f"= -1 + softplus(-3.5) = {-1 + math.log1p(math.exp(-3.5)):.4f}"
)
assert w_dot_u_hat > -1

# %% [markdown]
# ## 3. The other direction: a one-dimensional solve
#
# To evaluate a density we need $z = g^{-1}(x)$. Given $x$, the projection
# $y = w^\top x + b$ is known, and section 2 says $a = w^\top z + b$ solves
#
# $$a + m \tanh(a) = y, \qquad m = w^\top\hat u,$$
#
# a scalar equation per sample, with a unique root in $[y - |m|, y + |m|]$. minflow
# solves it by Newton's method safeguarded by bisection (see the `Note:` in
# `minflow/flows/planar.py`), then $z = x - \hat u \tanh(a)$. The log-det of this
# direction is minus that of the sampling map at the solved $z$. Round trip and
# log-dets in both directions, against brute force:

# %%
layer = Planar(2, dtype=np.float64, rng=make_rng(2))
x_test = rng.standard_normal((64, 2)) * 2
z_back, logdet_fwd = layer.forward(x_test)
x_again, logdet_inv = layer.inverse(z_back)
roundtrip_err = np.abs(x_again - x_test).max()
logdet_err = max(
    np.abs(logdet_fwd - brute_force_logdet(layer.forward, x_test)).max(),
    np.abs(logdet_inv - brute_force_logdet(layer.inverse, z_back)).max(),
)
print(
    f"round trip {roundtrip_err:.1e}, log-dets vs brute force {logdet_err:.1e}, "
    f"forward + inverse log-dets {np.abs(logdet_fwd + logdet_inv).max():.1e}"
)
assert roundtrip_err < 1e-10 and logdet_err < 1e-6

# %% [markdown]
# ## 4. The radial layer
#
# A radial layer contracts or expands space around a centre $z_0$:
#
# $$x = z + \beta\, h(r)\,(z - z_0), \qquad r = \|z - z_0\|, \quad h(r) = \frac{1}{\alpha + r},$$
#
# with $\alpha > 0$. A point at distance $r$ from $z_0$ stays on its ray and moves to
# distance $\rho(r) = r\,(1 + \beta h(r))$.
#
# **Log-det, in polar coordinates** (the swirl exercise of lesson 01, in $D$
# dimensions). Around any point, take the unit vector $n$ along the ray and $D-1$
# unit vectors perpendicular to it. Perpendicular directions are stretched like the
# sphere they lie on, by $\rho/r = 1 + \beta h$; the radial direction by
# $d\rho/dr = 1 + \beta h + \beta h'(r)\, r$. The Jacobian is diagonal in this basis, so
#
# $$\log\left|\det\frac{\partial x}{\partial z}\right| = (D - 1)\log(1 + \beta h) + \log\big(1 + \beta h + \beta h'(r)\, r\big).$$
#
# Invertibility needs $\rho$ increasing in $r$: $\beta \ge -\alpha$. minflow uses
# $\alpha = \operatorname{softplus}(\tilde\alpha)$ and
# $\beta = -\alpha + \operatorname{softplus}(\tilde\beta)$. Going back, $\rho = \|x - z_0\|$
# is known and $r$ solves $r(1 + \beta/(\alpha + r)) = \rho$, a quadratic with one
# non-negative root, so `Radial.forward` is exact.

# %%
radial = Radial(3, dtype=np.float64, rng=make_rng(3))
alpha, beta = (float(v[0]) for v in radial.alpha_beta())
z3 = rng.standard_normal((32, 3))
r = np.sqrt(((z3 - radial.params["z0"]) ** 2).sum(axis=1))
h, dh = 1 / (alpha + r), -1 / (alpha + r) ** 2
polar = (3 - 1) * np.log(1 + beta * h) + np.log(1 + beta * h + beta * dh * r)
radial_err = max(
    np.abs(polar - radial.inverse(z3)[1]).max(), np.abs(polar - brute_force_logdet(radial.inverse, z3)).max()
)
print(f"alpha = {alpha:.3f}, beta = {beta:.3f}; polar formula vs minflow and brute force: {radial_err:.1e}")
assert radial_err < 1e-6


# %% [markdown]
# ## 5. The backward pass of the planar sampling map
#
# Training by reverse KL (section 6) differentiates through the *sampling* map, so
# the gradient we need is `inverse_backward`: given $\bar x = \partial L/\partial x$
# (shape $(N, D)$) and $\bar\ell = \partial L/\partial\ell$ for $\ell = \log|\det \partial x/\partial z|$,
# return $\bar z$ and the parameter gradients. Forward steps, one sample at a time
# (with $m = w^\top\hat u$):
#
# | step | forward | backward (from the bottom) |
# |---|---|---|
# | 1 | $a = w^\top z + b$ | $\bar z \mathrel{+}= \bar a\, w$, $\;\bar w \mathrel{+}= \sum_n \bar a_n z_n$, $\;\bar b = \sum_n \bar a_n$ |
# | 2 | $t = \tanh a$ | $\bar a = \bar t\,(1 - t^2)$ |
# | 3 | $x = z + t\,\hat u$ | $\bar z = \bar x$, $\;\bar t = \bar x^\top\hat u$, $\;\bar{\hat u} = \sum_n t_n \bar x_n$ |
# | 4 | $\Delta = 1 + (1 - t^2)\, m$ | $\bar t \mathrel{+}= \bar\Delta\,(-2 t m)$, $\;\bar m = \sum_n \bar\Delta_n (1 - t_n^2)$ |
# | 5 | $\ell = \log\Delta$ | $\bar\Delta = \bar\ell / \Delta$ |
# | 6 | $m = w^\top\hat u$ | $\bar w \mathrel{+}= \bar m\,\hat u$, $\;\bar{\hat u} \mathrel{+}= \bar m\, w$ |
#
# Step 4 is $u^\top\psi$ from section 1 with $\psi = (1 - t^2) w$. Note that $t$ is
# used twice (steps 3 and 4): its gradients add. Finally $\bar{\hat u}$ and $\bar w$
# continue through the constraint $\hat u(u, w)$ of section 2, by the same chain
# rule (`Planar._sampling_vjp` writes out each step). Here are steps 1-6, next to
# minflow; $\bar z$ and $\bar b$ do not involve the constraint, so they must agree exactly:

# %%
def planar_sampling_backward(z, dx, dlogdet, u_hat, w, b):
    # steps 1-6 of the table; returns dz, du_hat, dw (before the constraint), db
    a = z @ w + b  # 1. (N,)
    t = np.tanh(a)  # 2.
    m = w @ u_hat  # 6.
    det = 1 + (1 - t**2) * m  # 4. (N,)
    ddet = dlogdet / det  # 5.
    dz = dx.copy()  # 3.
    dt = dx @ u_hat  # 3.
    du_hat = t @ dx  # 3. (D,)
    dt = dt - 2 * ddet * t * m  # 4.
    dm = ddet @ (1 - t**2)  # 4.
    da = dt * (1 - t**2)  # 2.
    dz = dz + da[:, None] * w  # 1.
    dw = da @ z + dm * u_hat  # 1. and 6.
    du_hat = du_hat + dm * w  # 6.
    return dz, du_hat, dw, da.sum(keepdims=True)


layer = Planar(2, dtype=np.float64, rng=make_rng(4))
layer.params["b"][...] = 0.4
z2 = rng.standard_normal((16, 2))
dx, dlogdet = rng.standard_normal((16, 2)), rng.standard_normal(16)
layer.zero_grads()
layer.inverse(z2)
dz_minflow = layer.inverse_backward(dx, dlogdet)
dz_mine, _, _, db_mine = planar_sampling_backward(z2, dx, dlogdet, layer.u_hat(), layer.params["w"], layer.params["b"])
planar_bw_err = max(np.abs(dz_mine - dz_minflow).max(), np.abs(db_mine - layer.grads["b"]).max())
print(f"steps 1-6 vs Planar.inverse_backward: dz and db differ by {planar_bw_err:.1e}")
assert planar_bw_err < 1e-12

# %% [markdown]
# And the whole layer, constraint included, against finite differences: the
# sampling direction (which we train) and the density direction (whose backward
# goes through the numerical solve by the implicit function theorem):

# %%
planar_report = gradcheck(Planar(2, dtype=np.float64, rng=make_rng(5)), rng.standard_normal((8, 2)))
radial_report = gradcheck(Radial(2, dtype=np.float64, rng=make_rng(6)), rng.standard_normal((8, 2)), verbose=False)
print(
    f"\nRadial: all {len(radial_report.rows)} rows pass: {radial_report.ok} (largest error {radial_report.max_error:.1e})"
)
assert planar_report.ok and radial_report.ok

# %% [markdown]
# ## 6. Reverse KL: fitting a density you cannot sample
#
# The targets are the four energies of Rezende & Mohamed (Table 1), with a soft
# wall so each is normalisable (`minflow.data.energy`, defined in
# [`docs/reference-problems.md`](../docs/reference-problems.md)): $p(x) = e^{-U(x)}/Z$, where we can evaluate $U$ and
# $\nabla U$ but have neither samples nor $Z$. Instead of $\mathrm{KL}(p\,\|\,q)$
# (lesson 02, which needs samples of $p$) we minimise
#
# $$\mathrm{KL}(q\,\|\,p) = \mathbb E_{q}\big[\log q(x) - \log p(x)\big]
# = \mathbb E_{q}\big[\log q(x) + U(x)\big] + \log Z \;\ge\; 0.$$
#
# $\log Z$ does not depend on the flow, so the loss is $\mathbb E_q[\log q + U]$.
#
# **Reparameterisation.** Write the expectation over the base noise,
# $x = g_\theta(z_0)$, $z_0 \sim \mathcal N(0, I)$, and use the change of variables in
# the sampling direction, $\log q(x) = \log\mathcal N(z_0) - \ell(z_0)$ with
# $\ell = \log|\det \partial x/\partial z_0|$:
#
# $$L(\theta) = \frac1N\sum_{n=1}^N \Big[\log\mathcal N(z_{0,n}) - \ell_n + U(x_n)\Big], \qquad x_n, \ell_n = g_\theta(z_{0,n}).$$
#
# The noise $z_{0,n}$ is fixed while differentiating, so $\log\mathcal N(z_{0,n})$ is a
# constant, and the two gradients that enter `inverse_backward` are
#
# $$\bar x_n = \frac{\nabla U(x_n)}{N}, \qquad \bar\ell_n = -\frac1N.$$
#
# The energy pulls samples downhill; the log-det term rewards spreading them out.
# No numerical solve is ever needed to train. The loop, written out:

# %%
target = get_energy("U1")
model = planar_2d(8, seed=0)  # float32; P2's initialisation
optimizer = Adam(model.params, model.grads, lr=5e-3)
rng_noise = make_rng(0)
n = 256
losses = []
for step in range(N_STEPS):
    z0 = model.base.sample(n, rng_noise, np.float32)  # (N, 2) fresh base noise
    model.zero_grads()
    x, logdet_inv = model.flow.inverse(z0)  # samples of q and log|det dx/dz0|
    log_q = model.base.log_prob(z0) - logdet_inv  # change of variables, sampling direction
    loss = (log_q + target.energy(x)).mean()  # KL(q || p) - ln Z
    dx_top = target.grad(x) / n  # dL/dx
    dlogdet_top = np.full(n, -1.0 / n, dtype=np.float32)  # dL/dlogdet
    model.flow.inverse_backward(dx_top, dlogdet_top)
    optimizer.step()
    losses.append(float(loss))
kl_explicit, kl_se = reverse_kl(model, target, n_samples=N_KL)
print(
    f"loss: first {losses[0]:.3f}, last 50 {np.mean(losses[-50:]):.3f};  "
    f"KL(q || p) = loss + ln Z = {kl_explicit:.3f} +- {kl_se:.3f}"
)

# %% [markdown]
# `FlowModel.reverse_kl_and_backward` is the middle of that loop and
# `minflow.zoo.p2.fit_reverse_kl` the loop; `reverse_kl(model, target)` estimates
# $\mathrm{KL}(q\,\|\,p)$ in float64 on fresh samples, adding $\ln Z$ (computed once by
# quadrature).
#
# ## 7. Depth matters: $K = 2, 8, 32$
#
# We fit planar flows of three depths to each target (the P2 recipe: batch 256,
# Adam at $5\cdot10^{-3}$, 10,000 steps) and compare with the same models written
# in PyTorch ([`docs/reference-problems.md`](../docs/reference-problems.md); reverse KL depends on the seed, so expect
# agreement in size, not to the digit).

# %%
PYTORCH_KL = {  # K = 2, 8, 32, docs/reference-problems.md section 4 (one seed)
    "U1": (0.69, 0.055, 0.019),
    "U2": (0.42, 0.049, 0.012),
    "U3": (0.89, 0.26, 0.035),
    "U4": (0.63, 0.32, 0.046),
}
fits = {}
for name in TARGETS:
    for k in DEPTHS:
        if (name, k) == ("U1", 8):  # the explicit loop above: same model, recipe and noise stream
            model_k, seconds = model, float("nan")
        else:
            model_k = planar_2d(k, seed=0)
            seconds = fit_reverse_kl(model_k, get_energy(name), n_steps=N_STEPS, seed=0, progress=False)["seconds"]
        kl, se = reverse_kl(model_k, get_energy(name), n_samples=N_KL)
        fits[name, k] = {"model": model_k, "kl": kl, "se": se, "seconds": seconds}
    took = [
        f"K={k} " + ("(above)" if math.isnan(fits[name, k]["seconds"]) else f"{fits[name, k]['seconds']:.0f} s")
        for k in DEPTHS
    ]
    print(f"{name}: trained in " + ", ".join(took))

print(f"\nKL(q || p) in nats after {N_STEPS} steps; in brackets the PyTorch reference after 10,000 steps")
if FAST:
    print(f"(fast mode: {N_STEPS} steps are far from converged, so the KL here is larger than the 10k reference)")
print(f"{'target':<7}" + "".join(f"{'K=' + str(k):>26}" for k in DEPTHS))
for name in TARGETS:
    cells = [
        f"{fits[name, k]['kl']:.3f}+-{fits[name, k]['se']:.3f} (10k: {PYTORCH_KL[name][i]:.3f})"
        for i, k in enumerate(DEPTHS)
    ]
    print(f"{name:<7}" + "".join(f"{c:>26}" for c in cells))

# %% [markdown]
# The target densities (left) and the fitted $q$ (right), as in the paper's Figure 3,
# each panel titled with its $\mathrm{KL}(q\,\|\,p)$ from the table. The panels of a row
# share one colour scale (the colourbar, in units of density, capped at 1.5 times the
# target's peak), so a fit that is too spread out looks dimmer than its target. Evaluating $q$ on a grid runs the numerical
# solve of every layer for every point.

# %%
fig, axes = plt.subplots(
    len(TARGETS), 1 + len(DEPTHS), figsize=(2.6 * (1 + len(DEPTHS)) + 0.6, 2.7 * len(TARGETS)), squeeze=False
)
for row, name in enumerate(TARGETS):
    target_k = get_energy(name)
    panels = [("target", lambda zz, t=target_k: t.log_prob(zz))]
    for k in DEPTHS:
        title = f"K = {k}, KL = {fits[name, k]['kl']:.3f}"
        panels.append((title, lambda zz, m=fits[name, k]["model"]: m.log_prob(zz.astype(np.float32))))
    densities = [np.exp(grid_log_density(log_prob, n=GRID, box=4.0)[0]).T for _, log_prob in panels]  # (GRID, GRID)
    vmax = 1.5 * densities[0].max()  # one colour scale per row; a sharper peak of q saturates
    for col, ((title, _), density) in enumerate(zip(panels, densities)):
        ax = axes[row, col]
        image = ax.imshow(density, origin="lower", extent=(-4, 4, -4, 4), cmap="viridis", vmin=0, vmax=vmax)
        ax.set(xticks=[], yticks=[])
        ax.set_title(title, fontsize=9)
    axes[row, 0].set_ylabel(name)
    fig.colorbar(image, ax=axes[row, :].tolist(), fraction=0.02, pad=0.01, extend="max", label="density")
fig.savefig(f"{FIGDIR}/04_planar_fits.png", bbox_inches="tight")
plt.show()

# %% [markdown]
# Two planar layers can bend the Gaussian only twice; U3 and U4, with their
# sharp, curved ridges, need many more. Reverse KL is **mode seeking**:
# $\mathrm{KL}(q\,\|\,p)$ punishes $q$ for putting mass where $p$ has none, not for
# missing a mode, so a shallow flow often covers one of U1's two halves well and
# the other poorly, where forward KL would smear mass over both.
#
# A radial flow of 32 layers on U1, for comparison (radial layers make round bumps,
# well suited to U1's ring):

# %%
radial_model = radial_2d(32, seed=0)
fit_reverse_kl(radial_model, get_energy("U1"), n_steps=N_STEPS, seed=0, progress=False)
radial_kl, radial_se = reverse_kl(radial_model, get_energy("U1"), n_samples=N_KL)
print(f"U1, 32 radial layers: KL(q || p) = {radial_kl:.3f} +- {radial_se:.3f}")

# %% [markdown]
# ## Check yourself

# %%
KL_BASE_U1 = 4.5792  # KL(N(0, I) || p_U1), the untrained base (docs/reference-problems.md)
rows = [
    ("matrix determinant lemma vs brute force", lemma_err, "< 1e-6", lemma_err < 1e-6),
    ("constraint: w.u_hat > -1", w_dot_u_hat, "> -1", w_dot_u_hat > -1),
    ("planar round trip", roundtrip_err, "< 1e-10", roundtrip_err < 1e-10),
    ("radial polar log-det formula", radial_err, "< 1e-6", radial_err < 1e-6),
    ("steps 1-6 vs inverse_backward", planar_bw_err, "< 1e-12", planar_bw_err < 1e-12),
    ("planar gradcheck, worst row", planar_report.max_error, "< 1e-6", planar_report.ok),
    ("explicit loop: KL below the base's", kl_explicit, f"< {KL_BASE_U1}", kl_explicit < KL_BASE_U1),
]
for (name, k), fit in fits.items():
    rows.append(
        (f"{name}, K={k}: KL >= 0 (up to 4 s.e.)", fit["kl"], f">= {-4 * fit['se']:.3f}", fit["kl"] >= -4 * fit["se"])
    )
deep = fits["U1", DEPTHS[-1]]["kl"]
rows.append((f"U1: K={DEPTHS[-1]} beats K=2", fits["U1", 2]["kl"] - deep, "> 0", deep < fits["U1", 2]["kl"]))
print(f"{'claim':<42} {'value':>9}  {'wanted':>8}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<42} {value:9.3g}  {wanted:>8}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - A planar layer $x = z + u\tanh(w^\top z + b)$ has Jacobian $I + u\psi^\top$, and by
#   the matrix determinant lemma $\log|\det| = \log|1 + u^\top\psi|$: $O(D)$.
# - It is invertible iff $w^\top u > -1$; minflow learns a free $u$ and uses the
#   constrained $\hat u$ (Rezende & Mohamed, appendix A.1). Its inverse is a 1-D solve.
# - A radial layer moves points along rays from $z_0$; its log-det is
#   $(D-1)\log(\rho/r) + \log\rho'$, like any radial map, and its inverse is a quadratic.
# - Reverse KL fits an unnormalised density: $L = \mathbb E_{z_0}[\log\mathcal N(z_0) - \ell + U(g(z_0))]$,
#   trained through the sampling pass with $\bar x = \nabla U/N$ and $\bar\ell = -1/N$.
#   It is mode seeking, and its value $+\ln Z$ is the exact $\mathrm{KL}(q\,\|\,p)$.
# - Depth matters for these thin layers: KL falls steeply from $K = 2$ to $K = 32$.
#
# **Read more.** Rezende & Mohamed (2015), *Variational inference with normalizing
# flows*, arXiv:1505.05770, sections 4 and 6.1, appendix A; Papamakarios et al. (2021),
# arXiv:1912.02762, sections 2.3 (reverse KL) and 3.2 (planar and radial flows);
# Kingma, Salimans et al. (2016), *Improved variational inference with inverse
# autoregressive flow*, arXiv:1606.04934 (why planar flows scale poorly with $D$).
#
# ## Exercises
#
# The checks are defined in the next cell; leave an answer at `None` to skip it.
# Solutions are in the appendix at the end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.
EX1 = {"u": np.array([1.0, 2.0, 0.0]), "w": np.array([0.5, -1.0, 2.0]), "b": 0.3, "z": np.array([0.2, 0.1, -0.4])}
EX2 = {"u": np.array([-3.0, 1.0]), "w": np.array([1.0, 0.0])}


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with a number).")
        return
    u, w, b, z = EX1["u"], EX1["w"], EX1["b"], EX1["z"]
    a = w @ z + b
    truth = math.log(abs(1 + (1 - math.tanh(a) ** 2) * (w @ u)))
    value = float(answer)
    if abs(value - math.log(abs(1 + w @ u))) < 1e-6:
        raise AssertionError("psi(z) is tanh'(w.z + b) * w: you left out the factor tanh' = 1 - tanh^2.")
    if abs(value - math.log(abs(1 + math.tanh(a) * (w @ u)))) < 1e-6:
        raise AssertionError("The derivative of tanh is 1 - tanh^2, not tanh.")
    assert abs(value - truth) < 1e-6, f"Not yet (you gave {value:.6f}). Use log|1 + u.psi(z)|."
    print(f"Exercise 1: correct! log|det| = {truth:.6f}.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a vector).")
        return
    u, w = EX2["u"], EX2["w"]
    got = np.asarray(answer, dtype=float)
    assert got.shape == (2,), f"u_hat is a vector of shape (2,); got shape {got.shape}."
    if np.allclose(got, u):
        raise AssertionError("w.u = -3 < -1: this u makes the layer non-invertible, so u_hat must differ from u.")
    m = -1 + math.log1p(math.exp(w @ u))
    truth = u + (m - w @ u) * w / (w @ w)
    assert np.allclose(got, truth, atol=1e-6), (
        f"Not yet: w.u_hat should be m(w.u) = -1 + softplus(-3) = {m:.5f}; yours is {w @ got:.5f}. "
        "Only the component along w changes."
    )
    print(f"Exercise 2: correct! u_hat = {truth.round(5)}, w.u_hat = {m:.5f} > -1.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    for dim in (2, 5):
        layer = Radial(dim, dtype=np.float64, rng=make_rng(dim))
        alpha, beta = (float(v[0]) for v in layer.alpha_beta())
        zz = np.random.default_rng(dim).standard_normal((20, dim))
        r = np.sqrt(((zz - layer.params["z0"]) ** 2).sum(axis=1))
        truth = layer.inverse(zz)[1]
        got = np.asarray(answer(r, alpha, beta, dim), dtype=float)
        assert got.shape == r.shape, f"Return one log-det per radius, shape {r.shape}; got {got.shape}."
        h = 1 / (alpha + r)
        if np.allclose(got, dim * np.log(1 + beta * h), atol=1e-8):
            raise AssertionError("The radial direction stretches differently from the D - 1 tangential ones.")
        if np.allclose(got, (dim - 1) * np.log(1 + beta * h) + np.log(1 + beta * h), atol=1e-8):
            raise AssertionError("d rho / dr also differentiates h(r): add beta * h'(r) * r to the radial factor.")
        assert np.allclose(got, truth, atol=1e-8), f"Not yet (checked against Radial in D = {dim})."
    print("Exercise 3: correct! (D - 1) log(1 + beta h) + log(1 + beta h + beta h' r).")


# %% [markdown]
# ### Exercise 1: a planar log-det by hand
#
# For $u = (1, 2, 0)$, $w = (0.5, -1, 2)$, $b = 0.3$ and $z = (0.2, 0.1, -0.4)$
# (in `EX1`), compute $\log|\det \partial x/\partial z|$ of the planar map.

# %%
answer_1 = None  # a number
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: the constrained $\hat u$
#
# For $w = (1, 0)$ and $u = (-3, 1)$ (in `EX2`), compute $\hat u$ with the formula of
# section 2. Which component changes, and why only that one?

# %%
answer_2 = None  # a vector of two numbers
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: the radial log-det
#
# Write `radial_logdet(r, alpha, beta, dim)` returning $\log|\det\partial x/\partial z|$
# of a radial layer for an array of radii $r$, in `dim` dimensions.

# %%
answer_3 = None  # your function (r, alpha, beta, dim) -> (N,)
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
# **1.** $a = w^\top z + b = -0.6$, $\psi = (1 - \tanh^2 a)\,w$, $\log|1 + u^\top\psi|$.
#
# </details>

# %% jupyter={"source_hidden": true}
a_ex = EX1["w"] @ EX1["z"] + EX1["b"]
psi_ex = (1 - np.tanh(a_ex) ** 2) * EX1["w"]
solution_1 = math.log(abs(1 + EX1["u"] @ psi_ex))
check_exercise_1(solution_1)

# %% [markdown]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# **2.** $w^\top u = -3$, $m(-3) = -1 + \operatorname{softplus}(-3) \approx -0.9514$; only the
# component along $w$ (the first) changes, because $\hat u - u$ is a multiple of $w$.
#
# </details>

# %% jupyter={"source_hidden": true}
wu = EX2["w"] @ EX2["u"]
solution_2 = EX2["u"] + (-1 + float(softplus(np.array(wu))) - wu) * EX2["w"] / (EX2["w"] @ EX2["w"])
check_exercise_2(solution_2)

# %% [markdown]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# **3.** $\rho/r = 1 + \beta h$ for each of the $D - 1$ tangential directions and
# $\rho' = 1 + \beta h + \beta h' r$ with $h' = -1/(\alpha + r)^2$ for the radial one.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_3(r, alpha, beta, dim):
    h = 1 / (alpha + r)
    dh = -(h**2)
    return (dim - 1) * np.log(1 + beta * h) + np.log(1 + beta * h + beta * dh * r)


check_exercise_3(solution_3)
