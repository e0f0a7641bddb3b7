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
# # 10 · Autoregressive flows: MADE, MAF and IAF
#
# A coupling layer (lesson 02) splits the variables in two halves and transforms
# the second given the first. An **autoregressive** layer goes all the way: in
# some order, variable $d$ is transformed with parameters that depend on every
# variable before it,
#
# $$z_d = \tau\big(x_d;\ \theta_d(x_{<d})\big), \qquad \log\Big|\det\frac{\partial z}{\partial x}\Big| = \sum_d \log \frac{\partial z_d}{\partial x_d}.$$
#
# The Jacobian is triangular, so the log-det is a sum, as for a coupling; but every
# variable now gets a transformation conditioned on others. One network computes all
# the $\theta_d$ at once if its outputs are masked so that $\theta_d$ cannot see
# $x_{\ge d}$: that network is **MADE**.
#
# **You will learn to**
# 1. build MADE's masks from degrees and check that its Jacobian is strictly triangular;
# 2. see why a MAF evaluates a density in one pass but samples in $D$ passes, and measure it;
# 3. turn the layer round into an IAF, which samples in one pass (for reverse KL);
# 4. read a coupling layer as a two-block autoregressive layer.
#
# **Time:** about 45 minutes. **Prerequisites:** lessons 01-03.

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
from minflow.flows.autoregressive import IAF, MaskedAutoregressive
from minflow.flows.coupling import Coupling
from minflow.flows.transformers import Affine
from minflow.gradcheck import brute_force_logdet
from minflow.nn.made import MADE
from minflow.nn.masked_linear import MaskedLinear
from minflow.zoo import maf_2d

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

DIMS = (2, 4, 8) if FAST else (2, 4, 8, 16, 32)  # D for the cost of the slow direction
N_TIME = 500 if FAST else 2000  # points per timed pass
REPEATS = 3 if FAST else 7  # timed repeats (the median is kept)

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)


def jiggle(layer, rng, scale=0.3):
    """Random weights everywhere a layer may have them (masked weights stay zero), so no output is trivially 0."""
    for p in layer.params.values():
        p += scale * rng.standard_normal(p.shape)
    for module in masked_linears(layer):
        module.params["W"] *= module.mask


def masked_linears(layer):
    made = layer if isinstance(layer, MADE) else getattr(layer, "made", None)
    return [m for m in made.layers if isinstance(m, MaskedLinear)] if made is not None else []


def jacobian(fn, x, h=1e-6):
    """d fn(x) / dx (out, in) of one point x (D,) by central differences."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((fn(x + e) - fn(x - e)) / (2 * h))
    return np.stack(cols, axis=1)


# %% [markdown]
# ## 1. MADE: masks from degrees
#
# Give every unit a **degree** (Germain et al. 2015, section 4):
#
# - input $d$: its position $m(d) \in \{1, \dots, D\}$ in the chosen order;
# - hidden unit $k$: some $m(k) \in \{1, \dots, D-1\}$ (minflow cycles through them);
# - output for variable $d$: $m(d)$ again.
#
# Keep a connection from a unit of degree $m$ into a **hidden** unit of degree $m'$ when
# $m' \ge m$, and into an **output** when $m' > m$ (strictly). Along any path the
# degrees never decrease and rise strictly at the last step, so output $d$ can
# only be reached from inputs $j$ with $m(j) < m(d)$: the Jacobian of the network is
# strictly triangular in the order. Below, a MADE on $D = 4$ variables in a random
# order, two hidden layers of 6 units, 2 outputs per variable (an affine
# transformer's $s$ and $t$).

# %%
D_MADE = 4
made = MADE(D_MADE, hidden=(6, 6), n_params=2, order="random", dtype=np.float64, rng=make_rng(3))
print("input degrees (the order):", made.degrees)
masks = [m.host_mask for m in masked_linears(made)]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for i, (ax, mask) in enumerate(zip(axes, masks)):
    ax.imshow(mask.T, cmap="Greys", vmin=0, vmax=1)
    ax.set_title(f"mask of layer {i} (out x in)", fontsize=9)
    ax.set_xlabel("input unit")
    ax.set_ylabel("output unit")
reach = (masks[0].astype(int) @ masks[1] @ masks[2]) > 0  # (D, P * D): is there a path from input j to output o?
axes[3].imshow(reach.T, cmap="Greys", vmin=0, vmax=1)
axes[3].set_title("paths input -> output", fontsize=9)
axes[3].set_xlabel("input variable")
fig.tight_layout()
fig.savefig(os.path.join(FIGDIR, "10_made_masks.png"))
plt.show()

# %% [markdown]
# The product of the masks counts the paths. Every output of variable $d$ (rows
# $d$ and $D + d$ of the last panel) is reached only from inputs of smaller degree.
# The same holds for the trained network's actual derivatives, whatever its
# weights: we give it random weights and build its Jacobian by finite differences.
# (Where a path is allowed the derivative is usually nonzero; a ReLU that is off at
# this point can still zero one.)

# %%
jiggle(made, np.random.default_rng(0))
x_point = np.random.default_rng(1).standard_normal(D_MADE)
J_made = jacobian(lambda v: made.forward(v[None])[0], x_point)  # (P * D, D)
allowed = np.tile(made.degrees, 2)[:, None] > made.degrees[None, :]  # output's degree > input's
made_leak = float(np.abs(J_made[~allowed]).max())
made_used = float(np.mean(np.abs(J_made[allowed]) > 1e-8))
print(f"largest |dout/din| where the mask forbids it: {made_leak:.1e}; nonzero where allowed: {made_used:.0%}")

# %% [markdown]
# ## 2. MAF: one pass for the density, $D$ for samples
#
# A masked autoregressive flow layer (Papamakarios et al. 2017) is MADE plus a
# transformer, here the affine one: $\theta = \mathrm{made}(x)$, $z = x\,e^{s} + t$.
#
# - **Density** ($x \to z$): all of $x$ is known, so one MADE pass gives every $\theta_d$.
# - **Sampling** ($z \to x$): $\theta_d$ needs $x_{<d}$, which we are computing. Pass 1
#   gives the first variable (its $\theta$ depends on nothing); pass 2, with it fixed,
#   the second; ... $D$ passes in all, one after the other.
#
# Both directions give the same map: the round trip is exact and the log-det is the
# brute-force one.

# %%
maf = MaskedAutoregressive(3, Affine(), hidden=(16, 16), order="random", dtype=np.float64, rng=make_rng(0))
jiggle(maf, np.random.default_rng(2), scale=0.2)
x3 = np.random.default_rng(3).standard_normal((5, 3))
z3, logdet3 = maf.forward(x3)
x3_back, logdet3_inv = maf.inverse(z3)
maf_roundtrip = float(np.abs(x3_back - x3).max())
maf_logdet_err = float(np.abs(logdet3 - brute_force_logdet(lambda v: maf.forward(v)[0], x3)).max())
J_maf = jacobian(lambda v: maf.forward(v[None])[0][0], x3[0])
order_pos = maf.made.degrees  # variable d is the m(d)-th in the order
maf_upper = float(np.abs(J_maf[order_pos[:, None] < order_pos[None, :]]).max())
print(f"round trip {maf_roundtrip:.1e}, log-det vs brute force {maf_logdet_err:.1e}, "
      f"|dz_d/dx_j| for j after d {maf_upper:.1e}")  # fmt: skip

# %% [markdown]
# Now the cost. For each $D$, one MAF layer with a (64, 64) MADE: the median time of
# a density pass and of a sampling pass on the same points.


# %%
def median_seconds(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


cost = {}
for dim in DIMS:
    layer = MaskedAutoregressive(dim, Affine(), hidden=(64, 64), rng=make_rng(dim))
    x_t = np.random.default_rng(dim).standard_normal((N_TIME, dim)).astype(np.float32)
    density = median_seconds(lambda layer=layer, x_t=x_t: layer.forward(x_t))
    sampling = median_seconds(lambda layer=layer, x_t=x_t: layer.inverse(x_t))
    cost[dim] = sampling / density
    print(f"D = {dim:>2}: density {1e3 * density:6.2f} ms, sampling {1e3 * sampling:7.2f} ms, ratio {cost[dim]:5.1f}")

fig, ax = plt.subplots(figsize=(4.5, 3.2))
ax.plot(DIMS, [cost[d] for d in DIMS], "o-", label="measured")
ax.plot(DIMS, DIMS, "k--", lw=1, label="D")
ax.set_xlabel("D")
ax.set_ylabel("sampling time / density time")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(FIGDIR, "10_maf_cost.png"))
plt.show()

# %% [markdown]
# The ratio grows like $D$: each sampling pass costs about one density pass, and there
# are $D$ of them. The measured ratios scatter around $D$: each sampling pass also
# copies one column and allocates its arrays, and timings of a fraction of a
# millisecond are noisy on a busy machine. On the 2D toys it is 2 passes per layer,
# measured 1.3x in time for `maf_2d` by `benchmarks/spline_2d.py speed`; on a
# 64-pixel image it would be 64 passes, and 3,072 on a 32x32 colour image: a MAF is
# a density model.

# %% [markdown]
# ## 3. IAF: the same layer, turned round
#
# The inverse autoregressive flow (Kingma et al. 2016) uses the fast direction for
# **sampling**: $x = \tau(z; \mathrm{made}(z))$, one pass; its density needs the $D$
# passes. In minflow, `IAF(...)` is exactly `MaskedAutoregressive(...)` with forward and
# inverse swapped. That suits reverse KL (lesson 04), which only ever samples from
# the model and evaluates $\log q$ at its own samples, where the log-det comes free
# with the sampling pass: `python -m minflow energy --flow iaf` fits $U_1..U_4$ so.

# %%
dim = DIMS[-1]
iaf = IAF(dim, Affine(), hidden=(64, 64), rng=make_rng(0))
z_t = np.random.default_rng(0).standard_normal((N_TIME, dim)).astype(np.float32)
iaf_sampling = median_seconds(lambda: iaf.inverse(z_t))
iaf_density = median_seconds(lambda: iaf.forward(z_t))
iaf_ratio = iaf_density / iaf_sampling
print(f"IAF, D = {dim}: sampling {1e3 * iaf_sampling:.2f} ms, density {1e3 * iaf_density:.2f} ms "
      f"(density / sampling = {iaf_ratio:.1f})")  # fmt: skip

# %% [markdown]
# The 2D model `maf_2d` (20 layers, orders natural and reversed in turn) pays
# 2 passes per layer to sample, against one for the density:

# %%
model = maf_2d()
x_moons = np.random.default_rng(0).standard_normal((10_000, 2)).astype(np.float32)
t_density = median_seconds(lambda: model.log_prob(x_moons))
t_sampling = median_seconds(lambda: model.sample(10_000, make_rng(0)))
print(f"maf_2d, 10^4 points: density {1e3 * t_density:.1f} ms, sampling {1e3 * t_sampling:.1f} ms "
      f"({t_sampling / t_density:.1f}x)")  # fmt: skip

# %% [markdown]
# ## 4. Coupling is a two-block autoregressive layer
#
# Group the variables in two blocks, $A$ (copied) and $B$ (transformed). A coupling
# layer is an autoregressive layer over the blocks: block 1 is transformed with
# parameters that depend on nothing (the identity), block 2 with parameters that
# depend on block 1. Its Jacobian is block triangular, $\begin{pmatrix} I & 0 \\ \ast & \mathrm{diag} \end{pmatrix}$,
# and inverting it takes "two passes", of which the first is free: one
# conditioner pass in each direction. The price: within a block the variables do
# not see each other, so a coupling needs several layers (and permutations) to let
# every variable depend on every other, where one MAF layer is already fully triangular.

# %%
D_C = 4
coupling = Coupling.for_vectors(D_C, np.arange(D_C) < 2, Affine(), hidden=(16,), dtype=np.float64, rng=make_rng(0))
jiggle(coupling, np.random.default_rng(4), scale=0.2)
J_c = jacobian(lambda v: coupling.forward(v[None])[0][0], np.random.default_rng(5).standard_normal(D_C))
a_blk, b_blk = slice(0, 2), slice(2, 4)
coupling_copy_err = float(np.abs(J_c[a_blk, a_blk] - np.eye(2)).max())  # block A copied: identity
coupling_within_b = float(np.abs(J_c[b_blk, b_blk] - np.diag(np.diag(J_c[b_blk, b_blk]))).max())  # no B -> B
coupling_cross = float(np.abs(J_c[b_blk, a_blk]).max())  # B depends on A
np.set_printoptions(precision=3, suppress=True)
print("coupling Jacobian dz/dx (rows z, columns x):\n", J_c)
print("MAF Jacobian, variables in the layer's order:\n", J_maf[np.ix_(order_pos.argsort(), order_pos.argsort())])

# %% [markdown]
# ## Check yourself

# %%
rows = [
    ("MADE: derivative where the mask forbids it", made_leak, "< 1e-8", made_leak < 1e-8),
    ("MADE: allowed derivatives nonzero (fraction)", made_used, "> 0.5", made_used > 0.5),
    ("MAF round trip", maf_roundtrip, "< 1e-10", maf_roundtrip < 1e-10),
    ("MAF log-det vs brute force", maf_logdet_err, "< 1e-6", maf_logdet_err < 1e-6),
    ("MAF Jacobian strictly triangular", maf_upper, "< 1e-8", maf_upper < 1e-8),
    (f"MAF sampling/density at D={DIMS[-1]}", cost[DIMS[-1]], f"> {DIMS[-1] / 4:g}", cost[DIMS[-1]] > DIMS[-1] / 4),
    (f"IAF density/sampling at D={DIMS[-1]}", iaf_ratio, f"> {DIMS[-1] / 4:g}", iaf_ratio > DIMS[-1] / 4),
    ("coupling: block A copied", coupling_copy_err, "< 1e-8", coupling_copy_err < 1e-8),
    ("coupling: no B -> B off the diagonal", coupling_within_b, "< 1e-8", coupling_within_b < 1e-8),
    ("coupling: B depends on A", coupling_cross, "> 1e-3", coupling_cross > 1e-3),
]
print(f"{'claim':<44} {'value':>9}  {'wanted':>8}  ok")
for claim, value, wanted, ok in rows:
    print(f"{claim:<44} {value:9.3g}  {wanted:>8}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# ## Summary
#
# - MADE masks an MLP by degrees ($\ge$ into hidden units, $>$ into outputs), so that
#   output $d$ depends only on the inputs before $d$: its Jacobian is strictly triangular.
# - MAF: $z = \tau(x; \mathrm{made}(x))$. Density in one pass; sampling in $D$ sequential
#   passes, so the sampling/density cost ratio grows like $D$ (measured above).
# - IAF is the same layer turned round: one-pass sampling, $D$-pass density. It is the
#   flow for reverse KL and variational inference.
# - A coupling layer is the two-block case: one block copied, the other conditioned on
#   it; one pass both ways, at the price of less conditioning per layer.
#
# **Read more.** Germain et al. (2015), *MADE*, arXiv:1502.03509; Papamakarios, Pavlakou &
# Murray (2017), *Masked autoregressive flow for density estimation*, arXiv:1705.07057;
# Kingma et al. (2016), *Improved variational inference with inverse autoregressive flow*,
# arXiv:1606.04934; Papamakarios et al. (2021), arXiv:1912.02762, section 3.1.
#
# ## Exercises
#
# The checks are defined in the next cell; leave an answer at `None` to skip it.
# Solutions are in the appendix at the end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.
EX1 = {"m_in": np.array([2, 3, 1]), "m_hidden": np.array([1, 2, 1, 2])}
EX3_RNG = np.random.default_rng(7)
EX3_W = np.tril(EX3_RNG.standard_normal((3, 3)), -1)  # strictly lower: theta_d sees x_<d (natural order)
EX3_V = np.tril(EX3_RNG.standard_normal((3, 3)), -1)


def ex3_conditioner(x):
    """mu, log_sigma of a toy autoregressive layer in the natural order: (N, 3) -> two (N, 3)."""
    return np.tanh(x @ EX3_W.T), 0.5 * np.tanh(x @ EX3_V.T)


def ex3_forward(x):
    mu, log_sigma = ex3_conditioner(x)
    return (x - mu) * np.exp(-log_sigma)


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with a function).")
        return
    for m_in, m_out, last in ((EX1["m_in"], EX1["m_hidden"], False), (EX1["m_hidden"], EX1["m_in"], True)):
        got = np.asarray(answer(m_in, m_out, last), dtype=bool)
        assert got.shape == (m_in.size, m_out.size), f"The mask is (in, out) = {(m_in.size, m_out.size)}; got {got.shape}."
        truth = m_out[None, :] > m_in[:, None] if last else m_out[None, :] >= m_in[:, None]
        if not np.array_equal(got, truth):
            if last and np.array_equal(got, m_out[None, :] >= m_in[:, None]):
                raise AssertionError("Into an output the degree must rise strictly (>), or x_d reaches its own theta_d.")
            if not last and np.array_equal(got, m_out[None, :] > m_in[:, None]):
                raise AssertionError("Into a hidden unit use >=: with > the first variable reaches no hidden unit.")
            raise AssertionError("Not yet: keep the connection in -> out where the out degree is large enough.")
    print("Exercise 1: correct! >= into hidden units, > into the outputs.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a pair of numbers).")
        return
    density, sampling = (int(v) for v in answer)
    if (density, sampling) == (40, 8):
        raise AssertionError("The other way round: the density is MAF's one-pass direction.")
    if sampling == 8:
        raise AssertionError("Sampling needs D = 5 passes in every one of the 8 layers.")
    assert (density, sampling) == (8, 40), "Not yet: count the MADE passes of each layer in each direction."
    print("Exercise 2: correct! 8 passes for the density, 8 x 5 = 40 to sample.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with your function).")
        return
    z = np.random.default_rng(8).standard_normal((6, 3))
    x = np.asarray(answer(z), dtype=float)
    assert x.shape == z.shape, f"Return x of the shape of z, {z.shape}; got {x.shape}."
    err = float(np.abs(ex3_forward(x) - z).max())
    assert err < 1e-10, (
        f"ex3_forward(x) differs from z by {err:.2e}. One pass at mu(z) is not enough: x_d needs "
        "mu_d(x_<d) of the x you are building; fix one variable per pass."
    )
    print("Exercise 3: correct! D passes, each fixes one more variable.")


# %% [markdown]
# ### Exercise 1: a MADE mask
#
# Write `mask(m_in, m_out, last)` returning the boolean (in, out) mask of one masked
# layer from the degrees of its input and output units; `last` says whether the
# outputs are the network's outputs. It is checked on the degrees in `EX1`.

# %%
answer_1 = None  # a function (m_in, m_out, last) -> bool array (in, out)
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: counting passes
#
# A MAF of 8 layers on $D = 5$ variables. How many MADE passes does it take to
# evaluate $\log q(x)$ of a batch, and how many to draw a batch of samples?

# %%
answer_2 = None  # (density passes, sampling passes)
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: sample by hand
#
# `ex3_forward(x)` is the density direction of a toy autoregressive layer,
# $z = (x - \mu(x)) e^{-\log\sigma(x)}$, with `ex3_conditioner(x)` returning
# $\mu, \log\sigma$ (each $\theta_d$ sees $x_{<d}$ in the natural order). Write
# `sample(z)` returning the $x$ with `ex3_forward(x) == z`.

# %%
answer_3 = None  # a function (N, 3) -> (N, 3)
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
# **1.** `m_out[None, :] > m_in[:, None]` if `last`, else `>=`: the strict step at the
# output is what keeps $x_d$ out of its own $\theta_d$.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_1(m_in, m_out, last):
    return m_out[None, :] > m_in[:, None] if last else m_out[None, :] >= m_in[:, None]


check_exercise_1(solution_1)

# %% [markdown]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# **2.** Density: one pass per layer, 8. Sampling: $D = 5$ passes per layer, 40.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_2 = (8, 40)
check_exercise_2(solution_2)

# %% [markdown]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# **3.** Start from $x = 0$; pass $k$ computes $\mu, \log\sigma$ at the current $x$ and
# sets $x_k = z_k e^{\log\sigma_k} + \mu_k$, which is already final since $\theta_k$ sees
# only $x_{<k}$, fixed by the earlier passes.
#
# </details>

# %% jupyter={"source_hidden": true}
def solution_3(z):
    x = np.zeros_like(z)
    for d in range(z.shape[1]):
        mu, log_sigma = ex3_conditioner(x)
        x[:, d] = z[:, d] * np.exp(log_sigma[:, d]) + mu[:, d]
    return x


check_exercise_3(solution_3)
