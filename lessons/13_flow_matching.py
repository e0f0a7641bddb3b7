# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (minflow)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13 · Flow matching: a flow without a log-determinant
#
# Every flow so far was a stack of layers, each built so that its
# log-determinant is cheap. A **continuous normalizing flow** replaces the stack
# by an ordinary differential equation $\dot x = v(x, t)$: infinitely many
# infinitesimal layers. **Flow matching** (Lipman et al. 2023, arXiv:2210.02747;
# rectified flow, Liu et al. 2022, arXiv:2209.03003) trains its velocity field
# $v$ by plain regression, with no ODE solve and no determinant during training.
# The exact likelihood comes afterwards, from the same change of variables as
# lesson 01.
#
# **You will learn to**
# 1. derive $\frac{d}{dt}\log p_t(x_t) = -\nabla\!\cdot v$ from the change of variables of lesson 01;
# 2. train a velocity field by conditional flow matching on straight paths from noise to data;
# 3. compute the exact divergence of a small network by forward-mode differentiation, and check it;
# 4. choose the number of ODE steps from the accuracy of the likelihood it gives (Euler against RK4);
# 5. compare flow matching with RealNVP (R2) at equal training time, against the true entropy.
#
# **Time:** about 60 minutes. **Prerequisites:** lessons 01 (change of
# variables) and 03 (couplings, NLL - H).

# %% [markdown]
# ## Setup
#
# `FAST` (the tests set `MINFLOW_FAST=1`) shrinks every run; by default the
# notebook trains at full size. Figures go to `../figures` or `MINFLOW_FIGDIR`.

# %%
# %matplotlib inline
import os
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import minflow
from minflow import viz
from minflow.backend import make_rng
from minflow.continuous import ContinuousFlowModel, VelocityField, fit_flow_matching, odeint
from minflow.data.toy2d import get_toy
from minflow.train import fit_samples
from minflow.zoo import realnvp_2d

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

HIDDEN = (64, 64) if FAST else (120, 120, 120)  # the velocity field's hidden widths
N_TRAIN = 400 if FAST else 4_000  # flow matching steps (batch 512)
N_TEST = 2_000 if FAST else 4_000  # held-out points for NLLs
GRID = 60 if FAST else 100  # cells per side of density grids
ODE_STEPS = 16 if FAST else 32  # RK4 steps for the likelihood

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)

# %% [markdown]
# ## 1. From many small layers to an ODE
#
# Lesson 01: if $z = f(x)$ is invertible, $\log p_X(x) = \log p_Z(f(x)) + \log|\det \partial f/\partial x|$.
# Now let the map be one small step of a velocity field,
#
# $$x_{t+h} = x_t + h\, v(x_t, t), \qquad \frac{\partial x_{t+h}}{\partial x_t} = I + h J, \quad J = \frac{\partial v}{\partial x}.$$
#
# Its log-determinant, for small $h$, is $\log\det(I + hJ) = h \operatorname{tr} J + O(h^2)$
# (the determinant is $1 + h\operatorname{tr}J + O(h^2)$: every other term of the
# expansion multiplies at least two off-identity entries). Mass is conserved
# along the step, $p_{t+h}(x_{t+h})\,|\det(I + hJ)| = p_t(x_t)$, so
#
# $$\log p_{t+h}(x_{t+h}) - \log p_t(x_t) = -h \operatorname{tr}J + O(h^2)
# \quad\Longrightarrow\quad
# \boxed{\;\frac{d}{dt}\log p_t(x_t) = -\nabla\!\cdot v(x_t, t)\;}$$
#
# with $\nabla\!\cdot v = \operatorname{tr} J = \sum_j \partial v_j / \partial x_j$, the **divergence**.
# This is the continuity equation $\partial_t p + \nabla\!\cdot(p\,v) = 0$ read along
# a moving point (expand $\nabla\!\cdot(p v) = v\cdot\nabla p + p\,\nabla\!\cdot v$ and
# note $\frac{d}{dt} p(x_t, t) = \partial_t p + v \cdot \nabla p$). A flow of
# infinitely many tiny layers needs a *trace* where a layer needed a
# *determinant*.
#
# Let us check the first-order claim with an untrained field: the exact
# log-determinant of one Euler step against $h \nabla\!\cdot v$.

# %%
field = VelocityField(2, hidden=(32, 32), n_frequencies=2, n_fourier=4, dtype=np.float64, rng=make_rng(1))
x = np.random.default_rng(0).standard_normal((5, 2))
v, div = field.divergence(x, 0.3)  # exact divergence, (N,)

print(" h       log|det(I + hJ)| (point 0)   h * div v    difference / h^2")
for h in [0.1, 0.01, 0.001]:
    step = lambda a, h=h: a + h * field.forward(a, 0.3)  # one Euler step, data -> data
    # the 2x2 Jacobian of the step, by central differences, then its log-determinant
    eps = 1e-6
    J = np.stack([(step(x + eps * e) - step(x - eps * e)) / (2 * eps) for e in np.eye(2)], axis=2)  # (N, 2, 2)
    logdet = np.linalg.slogdet(J)[1]
    print(f"{h:6.3f}   {logdet[0]:+.8f}               {h * div[0]:+.8f}   {(logdet[0] - h * div[0]) / h**2:+.4f}")
    assert np.abs(logdet - h * div).max() < 5 * h**2  # the gap is O(h^2): first order agrees
# %% [markdown]
# The last column stays bounded as $h$ shrinks: the gap is $O(h^2)$, so the
# divergence is exactly the rate at which log-volume grows.
#
# ## 2. Training without a log-determinant
#
# Which field carries $\mathcal N(0, I)$ at $t = 0$ to the data at $t = 1$?
# Flow matching picks one by regression. Draw noise $x_0 \sim \mathcal N(0, I)$,
# data $x_1$, a time $t \sim U[0, 1]$, and put a point on the **straight line**
# between them:
#
# $$x_t = (1 - t)\,x_0 + t\,x_1, \qquad u = \frac{d x_t}{dt} = x_1 - x_0 .$$
#
# One pair $(x_0, x_1)$ moves at constant speed $u$; but many pairs pass through
# the same $x_t$. Regressing $v(x_t, t)$ on $u$,
#
# $$\mathcal L = \mathbb E_{t, x_0, x_1}\, \big| v(x_t, t) - (x_1 - x_0) \big|^2 ,$$
#
# makes $v$ their average, $v^*(x, t) = \mathbb E[x_1 - x_0 \mid x_t = x]$, and Lipman
# et al. (Theorem 2) show that this averaged field moves the whole distribution
# $p_t$ of $x_t$ along: its ODE carries noise to data. No ODE is solved while
# training, no divergence is taken: one forward and one backward pass of an
# MLP per batch. minflow's `VelocityField` is an MLP with smooth SiLU
# activations over $[x, \sin(xB), \cos(xB), \phi(t)]$: random Fourier
# features of $x$ (a fixed matrix $B$; Tancik et al. 2020, arXiv:2006.10739),
# which let a small network draw sharp edges, and sinusoidal features $\phi$
# of the time.

# %%
toy = get_toy("moons")
model = ContinuousFlowModel(VelocityField(2, hidden=HIDDEN, rng=make_rng(0)), n_steps=ODE_STEPS)
print(f"velocity field: {model.num_params():,} parameters")
history = fit_flow_matching(model, toy.sample, N_TRAIN, batch_size=512, lr=1e-3, seed=0, progress=False)
cfm_seconds = history["seconds"]
print(
    f"{N_TRAIN} steps in {cfm_seconds:.1f} s; flow matching loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}"
)
assert np.mean(history["loss"][-5:]) < history["loss"][0]

display(viz.plot_loss(history, label="batch loss", ylabel="flow matching loss"))

# %% [markdown]
# The loss does not go to zero, and should not: $u = x_1 - x_0$ varies among
# the pairs that share an $x_t$, and the best $v$ only gets their mean. Its
# floor is that variance, unknown, so the loss alone cannot say how good the
# density is. The likelihood can.
#
# ## 3. The likelihood: integrate the divergence back to the noise
#
# Solve the ODE from a data point $x$ at $t = 1$ back to $z = x_0$ at $t = 0$,
# carrying the log-determinant along as a second state:
#
# $$\log q(x) = \log \mathcal N(z; 0, I) - \int_0^1 \nabla\!\cdot v(x_t, t)\, dt .$$
#
# In 2D the divergence can be exact: push the two unit directions $e_1, e_2$
# through the network alongside the input (forward-mode differentiation,
# derived in `minflow/continuous/velocity_field.py`) and sum $\partial v_1/\partial x_1 + \partial v_2/\partial x_2$.
# First check it against central differences, then check that the density
# integrates to one.

# %%
xs = toy.sample(6, make_rng(3), np.float64)
field64 = VelocityField(2, hidden=(16, 16), dtype=np.float64, rng=make_rng(2))
_, div = field64.divergence(xs, 0.7)
h = 1e-5
div_fd = sum(
    (field64.forward(xs + h * e, 0.7)[:, j] - field64.forward(xs - h * e, 0.7)[:, j]) / (2 * h)
    for j, e in enumerate(np.eye(2))
)
print("largest |exact - finite differences|:", np.abs(div - div_fd).max())
assert np.abs(div - div_fd).max() < 1e-6

box = ((-4.5, 4.5), (-4.5, 4.5))
X, Y, log_q = viz.density_grid(model.log_prob, box, n=GRID, dtype=np.float32)
cell = (9.0 / GRID) ** 2
mass = np.exp(log_q).sum() * cell
print(f"integral of q over the box: {mass:.4f}")
assert abs(mass - 1) < 2e-2
display(viz.plot_density_comparison(model, toy, path=f"{FIGDIR}/13_density_moons.png", n=GRID))

# %% [markdown]
# ## 4. How many ODE steps?
#
# The ODE is solved with fixed steps. Euler, $x \leftarrow x + h\,v$, has a
# global error $O(h)$; the classical Runge-Kutta method (RK4, four evaluations
# of $v$ per step) has $O(h^4)$: double the steps and the error falls 2x or 16x.
# The likelihood inherits the solver's error. We measure it against a
# reference solve with many RK4 steps.

# %%
test = toy.sample(N_TEST, make_rng(1_000_003))
reference = -model.log_prob(test, n_steps=128).astype(np.float64).mean()
steps_list = [2, 4, 8, 16, 32]
errors = {"euler": [], "rk4": []}
for method, errs in errors.items():
    for n in steps_list:
        nll = -model.log_prob(test, n_steps=n, method=method).astype(np.float64).mean()
        errs.append(abs(nll - reference))
print("steps  " + "  ".join(f"{n:>9}" for n in steps_list))
for method, errs in errors.items():
    print(f"{method:<6} " + "  ".join(f"{e:9.2e}" for e in errs))

fig, ax = plt.subplots(figsize=(6, 4))
for method, errs in errors.items():
    ax.loglog(steps_list, np.maximum(errs, 1e-9), "o-", label=method)
ax.set(
    xlabel="ODE steps (t from 1 to 0)",
    ylabel="|NLL - NLL(128 RK4 steps)| (nats)",
    title="solver steps vs likelihood error",
)
ax.set_xticks(steps_list, labels=[str(n) for n in steps_list])
ax.tick_params(axis="x", which="minor", labelbottom=False)
ax.axhline(1e-3, color="0.5", ls="--", lw=1)
ax.legend()
fig.tight_layout()
fig.savefig(f"{FIGDIR}/13_ode_steps.png")
plt.show()
assert errors["rk4"][-1] < 1e-3 and errors["rk4"][-1] < errors["euler"][-1]

# %% [markdown]
# RK4 costs four evaluations a step and still wins by orders of magnitude at
# equal work. A small, well-trained field is smooth enough that 16-64 RK4
# steps give the NLL to well under $10^{-3}$ nats; doubling the steps is the
# check. Samples run the same ODE forwards, from noise at $t = 0$:

# %%
display(viz.plot_ode_warping(model, toy, path=f"{FIGDIR}/13_warping.png", n_points=800 if FAST else 1500))

# %% [markdown]
# ## 5. Flow matching against RealNVP at equal training time
#
# R2 (8 affine couplings, 35,344 parameters) trains by maximum likelihood;
# the velocity field (34,442 parameters at full size) by regression. Give R2
# the wall time flow matching used above and compare both against the true
# entropy: $\mathrm{NLL} - H = \mathrm{KL}(p\,\|\,q)$.

# %%
r2 = realnvp_2d(seed=0)
r2_steps, start = 0, time.perf_counter()
while time.perf_counter() - start < cfm_seconds:  # chunks of 50 steps until the time is used
    fit_samples(r2, toy.sample, 50, batch_size=512, lr=1e-3, seed=r2_steps, progress=False)
    r2_steps += 50
r2_seconds = time.perf_counter() - start
rows = [
    ("flow matching", model.num_params(), N_TRAIN, cfm_seconds, -model.log_prob(test).astype(np.float64).mean()),
    ("R2 (RealNVP)", r2.num_params(), r2_steps, r2_seconds, -r2.log_prob(test).astype(np.float64).mean()),
]
print(f"{'model':<15} {'params':>8} {'steps':>7} {'seconds':>8} {'NLL - H':>8}")
for name, n_params, n_steps, seconds, nll in rows:
    print(f"{name:<15} {n_params:>8,} {n_steps:>7,} {seconds:>8.1f} {nll - toy.entropy:>8.3f}")
# (Each R2 chunk restarts Adam: fine for a rough equal-time comparison.)

# %% [markdown]
# Read the table with the time budget in mind. The flow matching loss is a
# noisy regression (section 2): each step sees a random $t$ and a random
# pairing of noise with data, so it needs many more steps than maximum
# likelihood to reach a given NLL, while each of its steps is cheap and
# needs no invertible architecture. On a smooth density like the moons and
# a short budget, R2 is hard to beat; flow matching's strength shows with
# longer training, on densities that affine couplings cannot draw.

# %% [markdown]
# On all four toys, at full size (20,000 steps) and on 10^5 test points,
# `python benchmarks/cfm_toys.py` measures flow matching against the true
# entropy; the README's section "Flow matching on the 2D toys" puts its table
# beside R2's and zuko's spline flow's numbers. An equal-time comparison with
# minflow's own spline flow is for when that flow exists.

# %% [markdown]
# ## Summary
#
# - A continuous flow moves points along $\dot x = v(x, t)$; log-density changes at the rate $-\nabla\!\cdot v$, the limit of lesson 01's $\log|\det|$ for tiny steps.
# - Flow matching trains $v$ by regressing on $x_1 - x_0$ along straight lines $x_t = (1 - t)x_0 + t x_1$: no ODE solve, no log-determinant, no invertibility constraint on the network.
# - The price is paid at evaluation: every likelihood or sample solves an ODE (RK4, tens of steps, each four network passes plus the divergence).
# - The divergence is exact in 2D by forward mode; in high dimensions one uses Hutchinson's trace estimator (Grathwohl et al. 2019), an unbiased but noisy likelihood.
# - The solver's error is measured by doubling the steps; RK4's falls 16x per doubling.

# %% [markdown]
# ## Exercises
#
# The checks are in the next cell; leave an answer at `None` to skip it.
# Solutions are at the end.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with your function).")
        return
    r = np.random.default_rng(7)
    x0, x1, t = r.standard_normal((9, 2)), r.standard_normal((9, 2)) + 3, r.uniform(0, 1, 9)
    out = answer(x0, x1, t)
    assert isinstance(out, tuple) and len(out) == 2, "Return a pair (x_t, u)."
    x_t, u = np.asarray(out[0]), np.asarray(out[1])
    assert x_t.shape == u.shape == (9, 2), f"x_t and u must have shape (9, 2); got {x_t.shape} and {u.shape}."
    x_t_ref = (1 - t)[:, None] * x0 + t[:, None] * x1
    if np.allclose(x_t, t[:, None] * x0 + (1 - t)[:, None] * x1):
        raise AssertionError("x_t runs the wrong way: at t = 0 it must be the noise x0, at t = 1 the data x1.")
    assert np.allclose(x_t, x_t_ref), "x_t should be the point a fraction t of the way from x0 to x1."
    if np.allclose(u, x0 - x1):
        raise AssertionError("u has the wrong sign: it is d x_t / dt, pointing from the noise to the data.")
    assert np.allclose(u, x1 - x0), "u is the velocity d x_t / dt of the straight line; differentiate x_t in t."
    print("Exercise 1: correct! x_t = (1 - t) x0 + t x1 and u = x1 - x0, the same for every t on the line.")


A_EX2 = np.array([[0.3, -1.0], [0.8, -0.9]])


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    if abs(value - np.trace(A_EX2)) < 1e-6:
        raise AssertionError("Sign: log q(x) = log N(z) - int_0^1 div v dt, and the divergence of A x is tr A.")
    if abs(value + np.linalg.det(A_EX2)) < 1e-6 or abs(value - np.linalg.det(A_EX2)) < 1e-6:
        raise AssertionError("The divergence is the trace of the Jacobian, not its determinant.")
    assert abs(value + np.trace(A_EX2)) < 1e-6, (
        f"Not yet ({value:.4f}). The Jacobian of v(x, t) = A x is A at every x and t; integrate -tr A over t in [0, 1]."
    )
    print("Exercise 2: correct! log q(x) - log N(z) = -tr(A) = 0.6: and indeed |det expm(A)| = e^(tr A).")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with a number).")
        return
    value = float(answer)
    if abs(value - 0.08 / 256) < 1e-6:
        raise AssertionError("That is RK4's rate (order 4). Euler is first order.")
    if abs(value - 0.08 / 16) < 1e-6:
        raise AssertionError("That would be a second-order method. Euler's error is proportional to h.")
    assert abs(value - 0.02) < 2e-3, f"Not yet ({value}). 64 steps are 4x 16 steps; Euler's error scales like h^1."
    print("Exercise 3: correct! Euler's error is O(h): 4x the steps, 1/4 of the error (RK4 would give 0.08/256).")


# %% [markdown]
# ### Exercise 1: the regression target
#
# Write `my_target(x0, x1, t)` that returns the pair `(x_t, u)` of flow
# matching's straight path for noise `x0` (N, 2), data `x1` (N, 2) and times
# `t` (N,): the point at time `t` and the velocity the network must regress on.

# %%
answer_1 = None  # your function (x0, x1, t) -> (x_t, u)
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: a linear field
#
# The field $v(x, t) = A x$ with `A_EX2` (defined in the checks cell) is
# independent of $t$. For a point $x$ whose trajectory reaches $z$ at $t = 0$,
# what is $\log q(x) - \log \mathcal N(z; 0, I)$? (A number; no ODE needed.)

# %%
answer_2 = None  # a number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: Euler's step count
#
# With 16 Euler steps the NLL of some model is off by 0.08 nats. About how far
# off is it with 64 Euler steps?

# %%
answer_3 = None  # a number, in nats
check_exercise_3(answer_3)

# %% [markdown]
# ## Appendix: solutions
#
# **1.** The line from $x_0$ (at $t = 0$) to $x_1$ (at $t = 1$) and its constant velocity.


# %%
def solution_1(x0, x1, t):
    x_t = (1 - t)[:, None] * x0 + t[:, None] * x1  # (N, 2)
    return x_t, x1 - x0


check_exercise_1(solution_1)

# %% [markdown]
# **2.** $\nabla\!\cdot(Ax) = \operatorname{tr}A$ everywhere, so
# $\log q(x) - \log\mathcal N(z) = -\int_0^1 \operatorname{tr}A\,dt = -\operatorname{tr}A$.
# Check: the flow map is $x = e^{A} z$, and $\log|\det e^{A}| = \operatorname{tr}A$ (Jacobi's formula, lesson 05).
# The RK4 solve agrees:

# %%
linear = lambda t, y: (y[0] @ A_EX2.T, np.full(y[0].shape[0], np.trace(A_EX2)))  # (v, div v)
x_end = np.array([[0.5, -1.0]])
z_end, logdet = odeint(linear, (x_end, np.zeros(1)), 1.0, 0.0, 64)
print("ODE:", logdet[0], "  -tr A:", -np.trace(A_EX2))
solution_2 = -np.trace(A_EX2)
check_exercise_2(solution_2)

# %% [markdown]
# **3.** Euler is first order: the error is proportional to $h = 1/n$, so 4x the
# steps give a quarter of the error, 0.02 nats.

# %%
solution_3 = 0.08 / 4
check_exercise_3(solution_3)
