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
# # 09 · The same code on a GPU
#
# Every layer in minflow is written once, against "an array module" `xp` that is
# NumPy on a CPU or CuPy on an NVIDIA GPU. CuPy copies NumPy's interface, so the
# same lines run on either; the only question is where the arrays live. This lesson
# shows how that works, how to move a model to a GPU, what a GPU costs and saves,
# and which habits keep code portable.
#
# **An honest note.** This notebook was executed, and its outputs committed, on a
# machine **without a GPU**. Every GPU cell checks for one and, where none is found,
# says so and skips; nothing below is a GPU measurement. Run it on a machine with
# CuPy and a GPU to fill those cells in with your own numbers.
#
# **You will learn to**
# 1. read minflow's one seam, `get_array_module`, and write device-agnostic code with it;
# 2. say where new arrays are created (`MINFLOW_BACKEND`, `make_rng`, `model.to`) and how results come back (`to_numpy`);
# 3. run a training loop unchanged on a GPU, and install CuPy for it;
# 4. explain why host transfers (`float(loss)`) are rare in a GPU loop;
# 5. predict, from a CPU measurement, when a GPU pays off.
#
# **Time:** about 30 minutes. **Prerequisites:** lesson 02.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import inspect
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import minflow
from minflow import backend
from minflow.backend import get_array_module, make_rng, to_numpy
from minflow.data.toy2d import get_toy
from minflow.flows import AffineCoupling
from minflow.optim import Adam
from minflow.zoo import realnvp_2d

FAST = os.environ.get("MINFLOW_FAST") == "1"
FIGDIR = os.environ.get("MINFLOW_FIGDIR", "../runs/figures")
os.makedirs(FIGDIR, exist_ok=True)
minflow.set_threads()  # one BLAS thread (or MINFLOW_THREADS): small models run fastest so, even on a busy laptop

BATCHES = (64, 512, 4096) if FAST else (64, 256, 1024, 4096, 16384, 65536)  # batch sizes timed
N_TIMED = 5 if FAST else 30  # timed steps per batch size

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 150})
print("fast mode" if FAST else "full mode", "| figures ->", FIGDIR)

# %% [markdown]
# ## 1. One seam: `get_array_module`
#
# A computing function never imports NumPy for its arithmetic. It asks its input
# which library it belongs to and uses that:
#
# ```python
# xp = get_array_module(x)     # numpy for a numpy.ndarray, cupy for a cupy.ndarray
# y = xp.exp(x) * w + b        # runs wherever x lives
# ```
#
# Here is the whole seam, and the forward pass of the affine coupling that uses it:

# %%
print(inspect.getsource(backend.get_array_module))
print(inspect.getsource(AffineCoupling.forward))

# %% [markdown]
# Operators (`*`, `+`, `@`, slicing) dispatch on the array type by themselves; only
# *functions* (`xp.exp`, `xp.concatenate`, ...) need the right module, so a layer
# starts with `xp = get_array_module(x)`. `backend.py` is the only file that imports
# CuPy; a test scans the package's source for any other import.
#
# ## 2. Where arrays are born, and how they come home
#
# Arrays that do not come from an input (parameters, random samples) are created on
# the **default backend**: `MINFLOW_BACKEND=numpy|cupy` in the environment, or
# `backend.set_backend(...)` in code. Random generators are made per backend,
# `make_rng(seed, xp)`, and draw their arrays there. A model moves with
# `model.to(xp)` (parameters, gradients, buffers and fixed index arrays), and a
# result comes back to the host with `to_numpy(x)`, once, for printing or plotting.

# %%
print("default backend:", backend.get_backend().__name__)
model = realnvp_2d(seed=0)
first_param = next(iter(model.params.values()))
print("parameters live in:", get_array_module(first_param).__name__, first_param.dtype)

try:
    backend.set_backend("cupy")  # raises a clear error where CuPy or a GPU is missing
    import cupy

    GPU = True
    print("CuPy", cupy.__version__, "sees", cupy.cuda.runtime.getDeviceCount(), "GPU(s)")
except RuntimeError as err:
    GPU = False
    print("No GPU backend here. minflow says:\n ", err)
finally:
    backend.set_backend("numpy")


# %% [markdown]
# ## 3. The same training loop, on either device
#
# The loop below has no device-specific line: the model's parameters decide the
# module, the random generator is made on it, the toy sampler draws there, and the
# loss is read back to the host once at the end.

# %%
def train(xp, n_steps, batch=512, seed=0):
    # R2 on moons, entirely on the array module xp; returns the final loss and seconds per step
    model = realnvp_2d(seed=seed).to(xp)  # built on the host, moved once
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    rng = make_rng(seed, xp)  # draws on xp's device
    toy = get_toy("moons")
    loss = None
    start = time.perf_counter()
    for _ in range(n_steps):
        x = toy.sample(batch, rng)  # (batch, 2) on xp's device
        model.zero_grads()
        loss = model.nll_and_backward(x)  # a 0-d array on the device: no transfer
        optimizer.step()
    final = float(loss)  # the one host transfer (on a GPU it also waits for the queue to drain)
    return final, (time.perf_counter() - start) / n_steps


loss_cpu, sec_cpu = train(np, 20 if FAST else 200)
print(f"NumPy: final batch NLL {loss_cpu:.3f}, {sec_cpu * 1e3:.2f} ms per step")
if GPU:
    import cupy

    train(cupy, 5)  # warm-up: CuPy compiles its kernels on first use
    loss_gpu, sec_gpu = train(cupy, 20 if FAST else 200)
    print(f"CuPy:  final batch NLL {loss_gpu:.3f}, {sec_gpu * 1e3:.2f} ms per step")
else:
    print("CuPy:  skipped (no GPU on this machine).")

# %% [markdown]
# From the command line, nothing changes but the environment:
#
# ```bash
# pip install -r requirements-gpu.txt          # CuPy for CUDA 12 (check nvidia-smi)
# MINFLOW_BACKEND=cupy python -m minflow demo --dataset moons
# MINFLOW_BACKEND=cupy .venv/bin/pytest tests  # the suite's xp fixture runs both backends
# ```
#
# ## 4. Why a GPU loop rarely reads a number
#
# A GPU runs asynchronously: Python queues kernels and moves on. Reading a value
# on the host (`float(loss)`, `.item()`, `print(x)`, `to_numpy`) makes Python wait until
# every queued kernel has finished, and copies memory across the bus. One such read
# per step turns a pipelined loop into a stop-and-go one. Hence minflow's rules: no
# `float()` or `.item()` inside layers; the training loop `fit` reads the loss only every
# `log_every` steps (and at the last step) to log it and to check it is finite; a
# numerical solver that must know when to stop (the planar layer's inverse, lesson
# 02) reads one boolean per iteration, and says so in its docstring.
#
# ## 5. When does a GPU pay off? A CPU measurement
#
# The time of one training step is roughly
#
# $$t(N) \approx t_0 + c\, N,$$
#
# a fixed cost $t_0$ per step (Python, and one library call per array operation,
# several hundred of them for R2's 8 couplings), plus work proportional to the batch
# $N$. On a CPU each library call costs a few microseconds; on a GPU each kernel
# launch costs a similar few microseconds, but the work term is far cheaper. So a
# GPU wins when $cN \gg t_0$: large batches, or wide layers (the convolutions of the
# image models), and loses nothing but its launch overhead on 2D toys with small
# batches. Here is $t(N)$ measured on this machine's CPU:

# %%
toy = get_toy("moons")
timings = {}
for batch in BATCHES:
    model = realnvp_2d(seed=0)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    rng = make_rng(0)
    samples = [toy.sample(batch, rng) for _ in range(N_TIMED + 2)]  # drawn outside the timer
    steps = []
    for i, x in enumerate(samples):
        start = time.perf_counter()
        model.zero_grads()
        model.nll_and_backward(x)
        optimizer.step()
        if i >= 2:  # the first steps warm caches
            steps.append(time.perf_counter() - start)
    timings[batch] = float(np.median(steps))
per_sample = {b: t / b for b, t in timings.items()}
slope, intercept = np.polyfit(list(timings), list(timings.values()), 1)
print(f"{'batch':>7} {'ms / step':>10} {'us / sample':>12}")
for batch, t in timings.items():
    print(f"{batch:>7} {t * 1e3:10.2f} {per_sample[batch] * 1e6:12.2f}")
note = "" if intercept > 0 else "  (below the noise of this measurement)"
print(f"fit t(N) = t0 + c N: t0 = {intercept * 1e3:.2f} ms{note}, c = {slope * 1e6:.2f} us per sample")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(list(timings), [t * 1e3 for t in timings.values()], "o-", label="CPU (NumPy), measured")
ax.set(xlabel="batch size N", ylabel="ms per training step", title="R2 training step on this CPU")
ax.legend()
fig.tight_layout()
fig.savefig(f"{FIGDIR}/09_cpu_scaling.png")
plt.show()

# %% [markdown]
# On this CPU the cost per sample settles to a constant $c$ (some microseconds)
# within a few hundred samples: NumPy's overhead per call is small next to the
# arithmetic, so the time grows almost in proportion to $N$ (the numbers are noisy on
# a shared machine; the fitted $t_0$ is the least reliable of them). A GPU turns this
# around: each kernel launch costs several microseconds, so $t_0$ is larger, but the
# work term is far smaller, and the step time stays nearly flat up to large batches.
# Hence the rule of thumb: a GPU pays off for large batches and wide layers (the
# convolutions of D8), not for R2 at batch 512. Where your GPU's curve crosses this
# one is a measurement to make on your machine: `benchmarks/compare.py` (R2, P2 and D8
# steps, minflow against PyTorch) and `benchmarks/gpu.py` (CuPy, PyTorch CUDA and the CPU side by side) run with
# a GPU. We report no GPU numbers because we have not measured any.
#
# ## Check yourself

# %%
source = inspect.getsource(AffineCoupling)
rows = [
    ("layers use get_array_module, not numpy", "numpy." not in source, "True", "numpy." not in source),
    ("NumPy training loop ran, finite loss", loss_cpu, "finite", bool(np.isfinite(loss_cpu))),
    (
        "work grows with the batch: t(largest) / t(64)",
        timings[BATCHES[-1]] / timings[BATCHES[0]],
        "> 4",
        timings[BATCHES[-1]] > 4 * timings[BATCHES[0]],
    ),
    (
        "to_numpy returns a host array",
        type(to_numpy(np.ones(2))).__name__,
        "ndarray",
        isinstance(to_numpy(np.ones(2)), np.ndarray),
    ),
]
if GPU:
    rows.append(("GPU loss close to CPU loss", abs(loss_gpu - loss_cpu), "< 0.05", abs(loss_gpu - loss_cpu) < 0.05))
print(f"{'claim':<42} {'value':>10}  {'wanted':>7}  ok")
for claim, value, wanted, ok in rows:
    shown = f"{value:10.3g}" if isinstance(value, float) else f"{value!s:>10}"
    print(f"{claim:<42} {shown}  {wanted:>7}  {'yes' if ok else 'NO'}")
assert all(ok for *_, ok in rows), "a claim failed: see the table"

# %% [markdown]
# (The GPU and CPU losses are not expected to agree to the last digit: the two
# libraries draw different random numbers from the same seed, and sum in different
# orders.)
#
# ## Summary
#
# - One seam: computing code takes its module from its inputs,
#   `xp = get_array_module(x)`; only `backend.py` imports CuPy.
# - New arrays are created on the default backend (`MINFLOW_BACKEND`), with generators
#   from `make_rng(seed, xp)`; `model.to(xp)` moves a model, `to_numpy` brings results home.
# - The same loop runs on a GPU unchanged; install CuPy with `requirements-gpu.txt`.
# - Host reads synchronise the GPU: keep them out of layers and out of every step.
# - A step costs a fixed overhead plus work per sample; a GPU pays off when the work
#   dominates (big batches, wide layers). This notebook has no GPU measurement.
#
# **Read more.** Okuta, Unno, Nishino, Hido & Loomis (2017), *CuPy: a NumPy-compatible
# library for NVIDIA GPU calculations*, LearningSys workshop at NeurIPS; the CuPy user
# guide, "Basics of CuPy" and "Performance best practices" (docs.cupy.dev); Harris et
# al. (2020), *Array programming with NumPy*, Nature 585 (the array API CuPy mirrors).
#
# ## Exercises
#
# The checks are defined in the next cell; leave an answer at `None` to skip it.
# Solutions are in the appendix at the end, folded until you open them.

# %%
# The checks. Each raises AssertionError with a hint if an answer is wrong.
SNIPPETS = {
    "a": "xp = get_array_module(x); return xp.exp(x).sum(axis=1)",
    "b": "return numpy.exp(x).sum(axis=1)",
    "c": "return (x * x).sum(axis=1)",
    "d": "xp = get_array_module(x); return xp.maximum(x, 0)",
}


def check_exercise_1(answer):
    if answer is None:
        print("Exercise 1: not attempted yet (replace None with a letter).")
        return
    choice = str(answer).strip().lower()
    assert choice in SNIPPETS, f"Answer with one of the letters {sorted(SNIPPETS)}; got {answer!r}."
    if choice == "c":
        raise AssertionError("(c) uses only operators and methods of x itself, which dispatch on x's type.")
    assert choice == "b", f"({choice}) takes its module from x. Look for a library named explicitly."
    print("Exercise 1: correct! numpy.exp would copy a CuPy array to the host (or fail): use xp.exp.")


def check_exercise_2(answer):
    if answer is None:
        print("Exercise 2: not attempted yet (replace None with a number).")
        return
    value = int(answer)
    if value == 40:
        raise AssertionError("fit also reads the loss at the LAST step, to report the final value.")
    if value == 1000:
        raise AssertionError("That is one read per step; fit reads every log_every steps.")
    assert value == 41, f"Not yet (you gave {value}). Read the condition in minflow.train.fit."
    print("Exercise 2: correct! steps 0, 25, ..., 975 and the last step 999: 41 reads.")


def check_exercise_3(answer):
    if answer is None:
        print("Exercise 3: not attempted yet (replace None with a number).")
        return
    value = int(answer)
    per_copy = 384_962 * 4
    if value == per_copy:
        raise AssertionError("That is the parameters alone; count the gradients and Adam's two moments too.")
    if value == 384_962 * 8 * 4:
        raise AssertionError("float32 numbers take 4 bytes, not 8.")
    assert value == 4 * per_copy, f"Not yet (you gave {value:,} bytes)."
    print(f"Exercise 3: correct! 4 copies x 384,962 x 4 bytes = {4 * per_copy:,} bytes (about 6 MB).")


# %% [markdown]
# ### Exercise 1: which one breaks on a GPU?
#
# Each snippet is the body of a function of an array `x`. Which one does **not**
# run unchanged (or runs slowly, through the host) when `x` is a CuPy array?
# `SNIPPETS` holds them; answer with a letter.

# %%
for letter, snippet in SNIPPETS.items():
    print(f"({letter}) {snippet}")
answer_1 = None  # a letter
check_exercise_1(answer_1)

# %% [markdown]
# ### Exercise 2: counting host reads
#
# `fit(model, ..., n_steps=1000, optimizer, log_every=25)`: how many times does the
# training loop read the loss back to the host?

# %%
answer_2 = None  # a number
check_exercise_2(answer_2)

# %% [markdown]
# ### Exercise 3: memory for training D8
#
# D8 has 384,962 parameters. Training it in float32 with Adam keeps the parameters,
# their gradients, and Adam's two moment estimates. How many bytes is that (ignoring
# activations)?

# %%
answer_3 = None  # a number of bytes
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
# **1.** (b): `numpy.exp` names NumPy. **2.** 41. **3.** $4 \times 384{,}962 \times 4$ bytes.
#
# </details>

# %% jupyter={"source_hidden": true}
solution_1 = "b"
check_exercise_1(solution_1)

solution_2 = len([step for step in range(1000) if step % 25 == 0 or step == 999])
check_exercise_2(solution_2)

solution_3 = 4 * 384_962 * 4
check_exercise_3(solution_3)
