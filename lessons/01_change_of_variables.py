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
# # 01 · Change of variables: how a density moves under an invertible map
#
# A normalizing flow is one formula used over and over: if you push a random
# variable through an invertible, differentiable map, its density changes by the
# **absolute value of the Jacobian determinant**. This lesson derives that formula
# from scratch and checks every claim numerically.
#
# **You will learn to**
# 1. derive the change-of-variables formula in 1D from "probability mass is conserved";
# 2. explain why the *absolute value* of the derivative (or determinant) appears;
# 3. see $|\det J|$ as the factor by which a map scales small areas in 2D;
# 4. write a density under a hand-made 2D bijection in log space and check that it integrates to 1;
# 5. read minflow's convention: `z, logdet = layer.forward(x)` with `logdet = log|det dz/dx|`.
#
# **Time:** about 45 minutes. **Prerequisites:** calculus (chain rule, partial
# derivatives), a little linear algebra (determinants), NumPy.

# %% [markdown]
# ## Setup
#
# One flag decides how much the notebook computes: the tests run it with
# `MINFLOW_FAST=1` (small grids, a few seconds); by default it runs at full quality.
# Figures go to `../runs/figures` (git-ignored), or to `MINFLOW_FIGDIR` if you set it.

# %%
# %matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow.distributions import StandardNormal
from minflow.flows import Bijection, Flow
from minflow.gradcheck import brute_force_logdet, check_logdet, check_roundtrip
from minflow.model import FlowModel

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

N_SAMPLES = 20_000 if FAST else 1_000_000  # Monte Carlo samples for histograms
GRID_1D = 4_001 if FAST else 40_001  # points of 1D integration grids
GRID_2D = 301 if FAST else 1_201  # points per axis of 2D integration grids

rng = np.random.default_rng(0)
plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150, "axes.grid": False})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)


# %% [markdown]
# ## Notation (used in every lesson)
#
# | symbol | code | meaning |
# |---|---|---|
# | $x \in \mathbb R^D$ | `x`, shape `(N, D)` | a data point; arrays hold a batch of $N$ of them, one per row |
# | $z \in \mathbb R^D$ | `z` | its latent; the **base** density $p_Z$ is a standard normal $\mathcal N(0, I)$ |
# | $f$, $z = f(x)$ | `z, logdet = layer.forward(x)` | the **forward** map, data $\to$ latent: the direction in which densities are evaluated |
# | $f^{-1}$, $x = f^{-1}(z)$ | `x, logdet = layer.inverse(z)` | the **inverse** map, latent $\to$ data: the direction in which samples are drawn |
# | $J = \partial z / \partial x$ | | the $D \times D$ Jacobian of the forward map |
# | $\ell = \log\lvert\det J\rvert$ | `logdet`, shape `(N,)` | the log-determinant `forward` returns; `inverse` returns $\log\lvert\det \partial x/\partial z\rvert = -\ell$ |
# | $p_X(x) = p_Z(f(x))\,\lvert\det J\rvert$ | `model.log_prob(x)` | the model's density of the data (also written $q$ when compared with a true $p$) |
# | $L$, $\bar a = \partial L/\partial a$ | `da` | a scalar loss and its gradient with respect to any array $a$ (lesson 03) |
# | $\log$, $\odot$ | `np.log`, `*` | the natural logarithm (so log-densities are in nats), the elementwise product |
#
# A flow stacks layers, $f = f_K \circ \dots \circ f_1$, and adds their
# log-determinants. Papers differ on the direction: Rezende & Mohamed (lesson 04)
# and many texts write a flow in the *sampling* direction, $x = g(z)$; whenever a
# lesson quotes such a formula it says which direction it is in.

# %% [markdown]
# ## 1. One dimension: probability mass is conserved
#
# Take a random variable $X$ with density $p_X$ and an invertible,
# differentiable map $f$. Let $Z = f(X)$, and suppose we know the density $p_Z$ of
# $Z$ (in a flow it will be a standard normal). What is $p_X$?
#
# minflow's convention, used in every file: **`forward` maps data $x$ to latent $z$**,
# $z = f(x)$, the direction in which densities are evaluated; `inverse` maps $z$ back
# to $x$, the direction in which samples are drawn.
#
# **Derivation.** Suppose first that $f$ is increasing. Then $X \le x$ happens
# exactly when $Z \le f(x)$, so the two cumulative distribution functions agree:
#
# $$F_X(x) = P(X \le x) = P(Z \le f(x)) = F_Z(f(x)).$$
#
# Differentiate both sides in $x$ (chain rule):
#
# $$p_X(x) = \frac{d}{dx} F_Z(f(x)) = p_Z(f(x))\, f'(x).$$
#
# In words: the mass $p_X(x)\,dx$ in a small interval of width $dx$ equals the
# mass $p_Z(z)\,dz$ of its image, an interval of width $dz = f'(x)\,dx$. Where
# $f$ stretches ($f' > 1$), the density of $x$ is *higher* than that of $z$, because
# a small $x$-interval collects the mass of a larger $z$-interval.
#
# **Example: the log-normal.** Let $Z \sim \mathcal N(0, 1)$ and $X = e^Z$. Then
# $f(x) = \log x$ maps data to latent, $f'(x) = 1/x$, and
#
# $$p_X(x) = \mathcal N(\log x;\, 0, 1)\cdot \frac{1}{x}, \qquad x > 0.$$
#
# Let us check it against a histogram of samples, and see what happens if we
# forget the factor $f'(x)$.

# %%
def normal_pdf(z):
    return np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


z = rng.standard_normal(N_SAMPLES)
x = np.exp(z)  # samples: the inverse map, latent -> data

grid = np.geomspace(1e-8, 400.0, GRID_1D)  # log-spaced: fine near 0, far out for the slow tail
with_jacobian = normal_pdf(np.log(grid)) / grid  # p_Z(f(x)) |f'(x)|
without_jacobian = normal_pdf(np.log(grid))  # p_Z(f(x)) alone: wrong

mass_with = np.trapezoid(with_jacobian, grid)
mass_without = np.trapezoid(without_jacobian, grid)
print(f"integral of p_Z(f(x)) |f'(x)| dx = {mass_with:.4f}")
print(f"integral of p_Z(f(x)) dx         = {mass_without:.4f}   (e^(1/2) = {math.exp(0.5):.4f}, see below)")

fig, ax = plt.subplots(figsize=(7, 3.5))
bins = np.linspace(0, 6, 121)
weights = np.full(x.size, 1 / (x.size * (bins[1] - bins[0])))  # each sample adds 1/(N * bin width)
ax.hist(x, bins=bins, weights=weights, color="0.8", label="histogram of $x = e^z$")
ax.plot(grid[grid < 6], with_jacobian[grid < 6], "C0", lw=2, label=r"$p_Z(\log x)\,/\,x$  (with $|f'(x)|$)")
ax.plot(grid[grid < 6], without_jacobian[grid < 6], "C3--", lw=2, label=r"$p_Z(\log x)$  (forgot $|f'(x)|$)")
ax.set(xlabel="x", ylabel="density", xlim=(0, 6), title="X = exp(Z): the Jacobian factor matters")
ax.legend()
fig.tight_layout()
fig.savefig(f"{FIGDIR}/01_lognormal.png")
plt.show()


# %% [markdown]
# Without the factor the "density" does not even integrate to 1: substituting
# $u = \log x$, $dx = e^u du$,
#
# $$\int_0^\infty \mathcal N(\log x)\,dx = \int_{-\infty}^{\infty} \mathcal N(u)\, e^u\, du
# = e^{1/2} \approx 1.6487,$$
#
# the mean of the log-normal, as printed above.
#
# ## 2. Why the absolute value
#
# Now let $f$ be *decreasing*. Then $X \le x$ happens exactly when $Z \ge f(x)$:
#
# $$F_X(x) = P(Z \ge f(x)) = 1 - F_Z(f(x))
# \quad\Longrightarrow\quad
# p_X(x) = -p_Z(f(x))\, f'(x) = p_Z(f(x))\,|f'(x)|,$$
#
# because $f'(x) < 0$. Both cases give one formula:
#
# $$\boxed{\;p_X(x) = p_Z(f(x))\,\left|f'(x)\right|\;}$$
#
# A density is never negative; the derivative can be. The absolute value is the
# width of the image interval, whichever way round it is traversed.

# %%
def f_decreasing(x):
    return 2.0 * (1.0 - x)  # data -> latent, f'(x) = -2


grid = np.linspace(-5, 7, GRID_1D)
signed = normal_pdf(f_decreasing(grid)) * (-2.0)  # p_Z(f(x)) f'(x)
absolute = normal_pdf(f_decreasing(grid)) * abs(-2.0)  # p_Z(f(x)) |f'(x)|
print(f"with f'(x):   integral {np.trapezoid(signed, grid):+.4f}, min value {signed.min():+.3f}  <- not a density")
print(f"with |f'(x)|: integral {np.trapezoid(absolute, grid):+.4f}, min value {absolute.min():+.3f}")

# %% [markdown]
# ## 3. Work in log space, and compose
#
# Flows multiply many such factors, and densities of high-dimensional data are
# astronomically small (a 64-pixel image may have $\log p \approx -100$), so we
# always work with logarithms:
#
# $$\log p_X(x) = \log p_Z(f(x)) + \log\left|f'(x)\right|.$$
#
# The second term is what every minflow layer returns as `logdet`.
#
# **Composition.** If $f = f_2 \circ f_1$ (first $f_1$, then $f_2$), the chain rule
# gives $f'(x) = f_2'(f_1(x))\, f_1'(x)$, so the log-dets **add**:
#
# $$\log|f'(x)| = \log|f_2'(h)| + \log|f_1'(x)|, \qquad h = f_1(x).$$
#
# This is why a deep flow is cheap to evaluate: each layer contributes its own
# log-det, and `minflow.flows.Flow` just sums them. Check it on
# $f_1(x) = \log x$ and $f_2(h) = 3h - 1$:

# %%
x0 = np.array([0.3, 1.0, 4.0])
h0 = np.log(x0)  # f1
logdet_sum = np.log(np.abs(1 / x0)) + np.log(3.0)  # log|f1'(x)| + log|f2'(h)|

eps = 1e-6  # the composite derivative by central differences


def f(x):
    return 3 * np.log(x) - 1


logdet_numeric = np.log(np.abs((f(x0 + eps) - f(x0 - eps)) / (2 * eps)))
print("sum of layer log-dets:", logdet_sum)
print("numeric log|f'(x)|:   ", logdet_numeric)
assert np.allclose(logdet_sum, logdet_numeric, atol=1e-6)


# %% [markdown]
# ## 4. Two dimensions: $|\det J|$ is an area ratio
#
# In $D$ dimensions the derivative becomes the Jacobian matrix
# $J_f(x) = \partial f / \partial x$, with entries $J_{ij} = \partial f_i / \partial x_j$.
#
# **Derivation in 2D.** Take a tiny square at $x$ with sides $\delta e_1$ and
# $\delta e_2$ (area $\delta^2$). To first order, $f$ maps it to the parallelogram
# spanned by
#
# $$f(x + \delta e_1) - f(x) \approx \delta\, J e_1, \qquad f(x + \delta e_2) - f(x) \approx \delta\, J e_2,$$
#
# the two columns of $J$, scaled by $\delta$. The area of a parallelogram spanned
# by $(a_1, a_2)$ and $(b_1, b_2)$ is $|a_1 b_2 - a_2 b_1|$, i.e.
# $|\det [a\; b]|$. So the image has area $|\det J|\,\delta^2$.
#
# Mass is conserved, so the mass of the square equals the mass of its image:
#
# $$p_X(x)\,\delta^2 = p_Z(f(x))\,|\det J_f(x)|\,\delta^2
# \quad\Longrightarrow\quad
# \boxed{\;\log p_X(x) = \log p_Z(f(x)) + \log\left|\det J_f(x)\right|\;}$$
#
# The same argument works in any dimension (a cube goes to a parallelepiped whose
# volume is $|\det J|$ times the cube's). The sign of $\det J$ only says whether
# the map flips orientation (a mirror image), which does not change volume.
#
# Let us watch a linear map and a nonlinear one deform a grid of small squares, and
# compare the area of one mapped square with $|\det J|$.

# %%
def polygon_area(points):
    # shoelace formula for a closed polygon given as (K, 2) vertices
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


A = np.array([[1.5, 0.8], [-0.3, 0.9]])


def linear(p):
    return p @ A.T  # (K, 2)


def nonlinear(p):
    # a smooth bijection: shift x2 by a bump of x1, then stretch x1 depending on x2
    q = p.copy()
    q[:, 1] = p[:, 1] + 0.6 * np.sin(1.5 * p[:, 0])
    q[:, 0] = p[:, 0] * np.exp(0.3 * np.tanh(q[:, 1]))
    return q


def grid_lines(lo=-1.5, hi=1.5, n=7, k=100):
    t = np.linspace(lo, hi, k)
    for c in np.linspace(lo, hi, n):
        yield np.stack([t, np.full(k, c)], 1)
        yield np.stack([np.full(k, c), t], 1)


delta = 1e-3 if FAST else 1e-4
corner = np.array([0.4, -0.2])
square = corner + delta * np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.7))
rows = []
for ax, (name, fn) in zip(axes, [("identity", lambda p: p), ("linear", linear), ("nonlinear", nonlinear)]):
    for line in grid_lines():
        m = fn(line)
        ax.plot(m[:, 0], m[:, 1], color="0.6", lw=0.8)
    big = fn(corner + 0.25 * np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float))
    ax.fill(big[:, 0], big[:, 1], color="C1", alpha=0.7)
    ax.set(title=name, aspect="equal", xticks=[], yticks=[])
    ratio = polygon_area(fn(square)) / delta**2
    det = np.exp(brute_force_logdet(fn, corner[None, :]))[0]
    rows.append((name, ratio, det))
fig.suptitle("a grid of squares and one highlighted square, before and after each map")
fig.tight_layout()
fig.savefig(f"{FIGDIR}/01_area.png")
plt.show()

print(f"{'map':<10} {'area(image)/area(square)':>25} {'|det J| (finite differences)':>29}")
for name, ratio, det in rows:
    print(f"{name:<10} {ratio:25.5f} {det:29.5f}")
    assert abs(ratio - det) < 1e-2 * det
print(f"linear map: |det A| = {abs(np.linalg.det(A)):.5f}")


# %% [markdown]
# `brute_force_logdet` (from `minflow.gradcheck`) builds the Jacobian column by
# column with central differences and takes `slogdet`: the slow, always-correct
# reference that every minflow layer's log-det is tested against.
#
# ## 5. A hand-made bijection that warps a Gaussian
#
# Now build a small flow by hand. In the sampling direction, $x = g(z)$ with
# $z \sim \mathcal N(0, I_2)$:
#
# $$x_1 = a z_1, \qquad x_2 = z_2\, e^{c z_1} + b\,(z_1^2 - 1).$$
#
# It stretches $z_1$, scales $z_2$ by an amount that depends on $z_1$ and bends the
# result into a banana. Its inverse, the `forward` (data $\to$ latent) map $f = g^{-1}$,
# is found by solving for $z$ one coordinate at a time:
#
# $$z_1 = x_1 / a, \qquad z_2 = \big(x_2 - b\,(z_1^2 - 1)\big)\, e^{-c z_1}.$$
#
# **Its Jacobian** $\partial z / \partial x$ is lower triangular, because $z_1$ does
# not depend on $x_2$:
#
# $$J_f = \begin{pmatrix} \partial z_1/\partial x_1 & \partial z_1/\partial x_2 \\ \partial z_2/\partial x_1 & \partial z_2/\partial x_2 \end{pmatrix}
# = \begin{pmatrix} 1/a & 0 \\ \ast & e^{-c z_1} \end{pmatrix}.$$
#
# The determinant of a triangular matrix is the product of its diagonal, so the
# messy entry $\ast$ does not matter:
#
# $$\log|\det J_f(x)| = -\log a - c\, z_1 = -\log a - \frac{c\, x_1}{a}.$$
#
# The inverse direction has the opposite log-det,
# $\log|\det J_g(z)| = \log a + c z_1$, because $J_g = J_f^{-1}$ and
# $\det(J^{-1}) = 1/\det J$.
#
# This triangular trick, "transform one part of the vector with a function of the
# other part", is exactly the idea of the coupling layers of lesson 02.
#
# Written as a minflow `Bijection`, the layer contract every flow layer follows
# (we only need `forward` and `inverse` today; `backward` comes in lesson 03):

# %%
class Banana(Bijection):
    # forward: z1 = x1 / a, z2 = (x2 - b (z1^2 - 1)) exp(-c z1); logdet = -log a - c z1

    def __init__(self, a=1.5, b=0.8, c=0.5):
        super().__init__()
        self.a, self.b, self.c = a, b, c

    def forward(self, x):
        z1 = x[:, 0] / self.a  # (N,)
        z2 = (x[:, 1] - self.b * (z1**2 - 1)) * np.exp(-self.c * z1)  # (N,)
        logdet = -math.log(self.a) - self.c * z1  # (N,) log|det dz/dx|
        return np.stack([z1, z2], axis=1), logdet

    def inverse(self, z):
        x1 = self.a * z[:, 0]
        x2 = z[:, 1] * np.exp(self.c * z[:, 0]) + self.b * (z[:, 0] ** 2 - 1)
        logdet = math.log(self.a) + self.c * z[:, 0]  # log|det dx/dz|
        return np.stack([x1, x2], axis=1), logdet


banana = Banana()
x_test = rng.standard_normal((16, 2)) * 2.0
print(check_roundtrip(banana, x_test))  # inverse(forward(x)) == x, log-dets cancel
print(check_logdet(banana, x_test))  # logdet vs slogdet of a finite-difference Jacobian
assert check_roundtrip(banana, x_test).ok and check_logdet(banana, x_test).ok

# %% [markdown]
# A bijection and a base density make a model: `FlowModel(flow, base)` computes
# $\log q(x) = \log \mathcal N(f(x); 0, I) + \log|\det J_f(x)|$, exactly the boxed
# formula. We evaluate it on a grid, integrate it (it must give 1), and compare the
# picture with samples drawn through the inverse.

# %%
model = FlowModel(Flow([banana]), StandardNormal((2,)))

lo1, hi1, lo2, hi2 = -9.0, 9.0, -8.0, 22.0  # a box holding all but ~2e-5 of the mass
g1, g2 = np.linspace(lo1, hi1, GRID_2D), np.linspace(lo2, hi2, GRID_2D)
X1, X2 = np.meshgrid(g1, g2)  # (G, G) each
points = np.stack([X1.ravel(), X2.ravel()], axis=1)  # (G*G, 2)
density = np.exp(model.log_prob(points)).reshape(X1.shape)  # (G, G)
mass_banana = np.trapezoid(np.trapezoid(density, g1, axis=1), g2)
print(f"integral of q(x) over the box: {mass_banana:.6f}")

samples = model.sample(5000, rng=np.random.default_rng(1), dtype=np.float64)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
axes[0].pcolormesh(X1, X2, density, cmap="viridis", shading="auto")
axes[0].set_title(r"$q(x) = \mathcal{N}(f(x))\,|\det J_f(x)|$")
axes[1].scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.4)
axes[1].set_title(r"samples $x = g(z)$, $z \sim \mathcal{N}(0, I)$")
for ax in axes:
    ax.set(xlim=(-5, 5), ylim=(-3, 8), xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.tight_layout()
fig.savefig(f"{FIGDIR}/01_banana.png")
plt.show()

# %% [markdown]
# ## Check yourself
#
# One table of everything this lesson claimed, each row with its tolerance.

# %%
rows = [
    ("log-normal, with |f'|: integral", mass_with, 1.0, 1e-4),
    ("log-normal, without |f'|: integral", mass_without, math.exp(0.5), 1e-4),
    ("banana: integral of q over the box", mass_banana, 1.0, 1e-3),
    ("banana: max |logdet - slogdet(J)|", check_logdet(banana, x_test).max_error, 0.0, 1e-6),
    ("banana: round-trip error", check_roundtrip(banana, x_test).max_error, 0.0, 1e-10),
    ("banana: mean of samples x1 (exact 0)", samples[:, 0].mean(), 0.0, 0.1),
]
print(f"{'quantity':<40} {'value':>10} {'expected':>10} {'tol':>8}")
for name, value, expected, tol in rows:
    print(f"{name:<40} {value:10.5f} {expected:10.5f} {tol:8.0e}")
    assert abs(value - expected) <= tol, name
print("all checks passed")

# %% [markdown]
# ## Summary
#
# - For an invertible, differentiable $f$ mapping data to latent,
#   $\log p_X(x) = \log p_Z(f(x)) + \log|\det J_f(x)|$: mass is conserved, and
#   $|\det J|$ is the factor by which $f$ scales small volumes.
# - The absolute value is there because volumes are positive; a negative
#   determinant only means the map flips orientation.
# - Log-dets of a composition add, so a deep flow's log-det is a sum of per-layer terms.
# - A triangular Jacobian has its determinant on the diagonal: a cheap log-det,
#   whatever the off-diagonal mess. Coupling layers (lesson 02) are built on this.
# - minflow's contract: `z, logdet = layer.forward(x)` with `logdet = log|det dz/dx|`,
#   and `inverse` returns the opposite log-det. Checked by `check_roundtrip` and
#   `check_logdet` against a brute-force Jacobian.
#
# **Read more.** Rezende & Mohamed (2015), *Variational inference with normalizing
# flows*, arXiv:1505.05770, section 3; Papamakarios, Nalisnick, Rezende, Mohamed &
# Lakshminarayanan (2021), *Normalizing flows for probabilistic modeling and
# inference*, JMLR, arXiv:1912.02762, section 2; Dinh, Krueger & Bengio (2014),
# *NICE*, arXiv:1410.8516, section 2.
#
# ## Exercises
#
# Each exercise ends with a check cell: leave `None` to skip it, or put your answer
# there and run the cell; it tells you whether the answer is right and, if not, gives
# a hint. The checks are defined in the next cell (reading them is allowed, but try
# first). Solutions are in the appendix at the very end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with your function).")
        return
    x = np.linspace(-20, 20, 101)
    truth = -0.5 * np.arcsinh(x) ** 2 - 0.5 * math.log(2 * math.pi) - 0.5 * np.log1p(x**2)
    got = np.asarray(answer(x), dtype=float)
    assert got.shape == x.shape, f"log_p(x) should return one value per point, shape {x.shape}; got {got.shape}."
    diff = got - truth
    if np.allclose(diff, 0.5 * np.log1p(x**2), atol=1e-6):
        raise AssertionError("You are missing the log|dz/dx| term: z = arcsinh(x) has dz/dx = 1/sqrt(1 + x^2).")
    if np.allclose(diff, np.log1p(x**2), atol=1e-6):
        raise AssertionError("Check the sign of the log-det: dz/dx = 1/sqrt(1 + x^2) < 1, so its log is negative.")
    assert np.allclose(got, truth, atol=1e-6), (
        "Not yet: at x = 0 the right value is -0.5 log(2 pi) = -0.9189; "
        f"yours is {float(got[50]):.4f}. Write z = f(x) first, then add log|f'(x)|."
    )
    print("Exercise 1: correct! log p_X(x) = log N(arcsinh x) - 0.5 log(1 + x^2).")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    truth = -1 / 9 - math.log(2 * math.pi) - math.log(3)
    value = float(answer)
    if abs(value - (-1 / 9 - math.log(2 * math.pi))) < 1e-4:
        raise AssertionError("You computed log N(z) but left out the log-det term log|det dz/dx|.")
    if abs(value - (-1 / 9 - math.log(2 * math.pi) + math.log(3))) < 1e-4:
        raise AssertionError(
            "Wrong direction: log|det A| = +log 3 is the log-det of the sampling map z -> x. "
            "The density of x needs log|det dz/dx| = log|det A^-1|."
        )
    if abs(value - (-1.0 - math.log(2 * math.pi) - math.log(3))) < 1e-4:
        raise AssertionError("The log-det is right, but log N was evaluated at x; evaluate it at z = A^-1 x.")
    assert abs(value - truth) < 1e-4, f"Not yet (you gave {value:.4f}). Solve A z = x for z, then add log|det A^-1|."
    print(f"Exercise 2: correct! log p_X((1, 1)) = {truth:.4f}.")


def swirl_stretch(z):
    # the sampling map of exercise 3: polar (r, theta) -> (r (1 + r^2 / 4), theta + OMEGA r)
    r = np.sqrt((z**2).sum(axis=1))  # (N,)
    theta = np.arctan2(z[:, 1], z[:, 0]) + OMEGA * r
    rho = r * (1 + r**2 / 4)
    return np.stack([rho * np.cos(theta), rho * np.sin(theta)], axis=1)


OMEGA = 1.3


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    z = np.random.default_rng(3).standard_normal((64, 2)) * 1.5
    truth = brute_force_logdet(swirl_stretch, z)  # (64,)
    got = np.asarray(answer(z), dtype=float)
    assert got.shape == (64,), f"logdet(z) should return one value per row of z, shape (64,); got {got.shape}."
    r2 = (z**2).sum(axis=1)
    if np.allclose(got, np.log1p(3 * r2 / 4), atol=1e-5):
        raise AssertionError(
            "That is only the radial stretch d rho/dr. A circle of radius r becomes one of radius rho(r), "
            "so lengths along the circle stretch too, by rho/r."
        )
    assert np.allclose(got, truth, atol=1e-5), (
        f"Not yet: the largest difference from the finite-difference log-det is {np.max(np.abs(got - truth)):.3g}. "
        "Hint: in polar coordinates the area element r dr dtheta becomes rho d(rho) d(theta'); does the swirl "
        "(theta' = theta + OMEGA r) change areas?"
    )
    print("Exercise 3: correct! The swirl preserves area; the stretch contributes log(rho/r) + log(rho').")


# %% [markdown]
# ### Exercise 1: the density of $\sinh(Z)$
#
# Let $Z \sim \mathcal N(0, 1)$ and $X = \sinh(Z)$. Write a function `log_p(x)` that
# returns $\log p_X(x)$ for an array of points $x$. (Hint: $\frac{d}{dx}\operatorname{arcsinh} x = 1/\sqrt{1 + x^2}$.)

# %%
answer_1 = None  # e.g. answer_1 = lambda x: ...
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: a linear flow, by hand
#
# Samples are drawn as $x = A z$ with $z \sim \mathcal N(0, I_2)$ and
# $A = \begin{pmatrix} 2 & 1 \\ 1 & 2 \end{pmatrix}$. What is $\log p_X(x)$ at
# $x = (1, 1)$? Give a number (use `math.log`, `np.linalg.solve`, ... as you like).

# %%
answer_2 = None  # a number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: the log-det of a swirl with a stretch
#
# The sampling map `swirl_stretch` (defined in the checks cell) works in polar
# coordinates: a point at radius $r$ and angle $\theta$ goes to radius
# $\rho(r) = r(1 + r^2/4)$ and angle $\theta + \omega r$ ($\omega = 1.3$). Write
# `logdet(z)` returning $\log|\det \partial x / \partial z|$ for each row of an
# $(N, 2)$ array `z`. Derive it on paper first; the check compares it with
# `brute_force_logdet`. (Hint: in polar coordinates the area element is
# $r\,dr\,d\theta$.)

# %%
answer_3 = None  # e.g. answer_3 = lambda z: ...
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
# **1.** $z = \operatorname{arcsinh} x$, $\log|dz/dx| = -\tfrac12 \log(1 + x^2)$.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_1(x):
    z = np.arcsinh(x)
    return -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - 0.5 * np.log1p(x**2)


check_exercise_1(solution_1)

# %% [markdown]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# **2.** $z = A^{-1}x = (1/3, 1/3)$, so $\log\mathcal N(z) = -\tfrac12 \cdot \tfrac29 - \log 2\pi$;
# and $\log|\det A^{-1}| = -\log|\det A| = -\log 3$.
#
# </details>

# %% jupyter={"source_hidden": true}
A2 = np.array([[2.0, 1.0], [1.0, 2.0]])
z2 = np.linalg.solve(A2, np.array([1.0, 1.0]))
solution_2 = -0.5 * z2 @ z2 - math.log(2 * math.pi) - math.log(abs(np.linalg.det(A2)))
check_exercise_2(solution_2)

# %% [markdown]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# **3.** In polar coordinates the map is $(r, \theta) \mapsto (\rho(r), \theta + \omega r)$,
# with Jacobian $\begin{pmatrix} \rho' & 0 \\ \omega & 1 \end{pmatrix}$ of determinant
# $\rho'(r)$: the swirl is a shear, area preserving. Converting the area elements,
# $\rho\, d\rho\, d\theta' = \rho\, \rho'\, dr\, d\theta = \frac{\rho \rho'}{r}\,(r\, dr\, d\theta)$, so
#
# $$\log|\det J| = \log\frac{\rho(r)}{r} + \log \rho'(r) = \log\left(1 + \frac{r^2}{4}\right) + \log\left(1 + \frac{3 r^2}{4}\right).$$
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_3(z):
    r2 = (z**2).sum(axis=1)
    return np.log1p(r2 / 4) + np.log1p(3 * r2 / 4)


check_exercise_3(solution_3)
