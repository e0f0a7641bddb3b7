"""TarFlow for the 8x8 digits: a stack of TarFlow blocks over patches, with D8's preprocessing.

Zhai et al. (2025), "Normalizing Flows are Capable Generative Models", ICML
2025, arXiv:2412.06329. Forward = data -> latent. Over dequantised pixels
v in [0, 1)^(1x8x8), as D8 (reference-problems.md, section 3: the same
split, dequantisation and logit transform, so bits per dimension compare):

    Logit(a = 0.05)                                  1x8x8
    Patchify(p)                                      -> T = (8/p)^2 tokens of p^2 values
    TarFlowBlock, Reverse, TarFlowBlock, Reverse, ..., TarFlowBlock     (``blocks`` of them)
    base N(0, I) over (T, p^2)

Each block: z_t = (x_t - mu_t) exp(-alpha_t), (mu_t, alpha_t) from a causal
Transformer over the tokens before t (``flows.tarflow``); the token order is
reversed between blocks, so every token is conditioned on every other one
somewhere in the stack. The default, 2x2 patches (16 tokens of 4 values),
6 blocks of one Transformer layer of width 64 (4 heads, MLP ratio 4), has
TARFLOW_PARAMETERS = 311,880 parameters, under D8's 384,962; ``patch=1``
reads one pixel per token (64 tokens of 1 value).

Measured by D8's recipe (benchmarks/tarflow_digits.py: batch 64, Adam lr
1e-3, test bits/dim with 10 dequantisation draws; results in
benchmarks/results/): 2x2 patches 2.253 after 20 epochs (D8: 2.036) and
2.102 after 100 (best 2.075, epoch 91); one pixel per token 2.394 after 20
epochs, at 3 to 5 times the step time. TarFlow's training recipe, a
learning rate with linear warmup and cosine decay, AdamW (decoupled weight
decay 0.1) and an exponential moving average of the weights, with batches
of 16 (``python -m minflow tarflow --epochs 100 --batch-size 16 --lr 1.5e-3
--optimizer adamw --weight-decay 0.1 --schedule cosine --warmup 2 --ema
0.9995``), gives 2.028 at best (epoch 90) and 2.030 after 100 epochs
(seeds 0, 1, 2: best 2.028 to 2.032, last 2.030 to 2.038), level with D8's
best (2.029) with fewer parameters (README, "TarFlow on 8x8 digits").

TarFlow's training recipe, Gaussian noise in logit space and one denoising
step on the samples, is ``zoo.noise`` (``python -m minflow tarflow --noise
SIGMA``); after 20 epochs it gives 2.267, 2.368 and 2.668 clean test
bits/dim at sigma 0.1, 0.3 and 0.6 (benchmarks/results/tarflow_noise_20ep.json).
"""

from ..backend import DEFAULT_DTYPE, make_rng
from ..distributions import StandardNormal
from ..flows.flow import Flow
from ..flows.patchify import Patchify
from ..flows.permutation import Reverse
from ..flows.preprocessing import Logit
from ..flows.tarflow import TarFlowBlock
from ..model import FlowModel
from ..nn.causal_transformer import CausalTransformer
from .d8 import D8_ALPHA

__all__ = ["TARFLOW_PARAMETERS", "tarflow_digits"]

TARFLOW_PARAMETERS = 311_880


def tarflow_digits(
    patch=2,
    blocks=6,
    hidden=64,
    depth=1,
    n_heads=4,
    mlp_ratio=4,
    alpha_bound=2.0,
    size=8,
    alpha=D8_ALPHA,
    dtype=DEFAULT_DTYPE,
    seed=0,
    rng=None,
):
    """A TarFlow on 1 x size x size images (see the module docstring).

    Args:
        patch: p, the patch side: 2 (16 tokens of 4 values on 8x8) or 1
            (one pixel per token); it must divide ``size``.
        blocks: number of TarFlow blocks (the token order reverses between them).
        hidden, depth, n_heads, mlp_ratio: each block's causal Transformer
            (width K, layers, heads, MLP width / K).
        alpha_bound: B in each block's alpha = B tanh(a / B).
        size: image side (8 for the digits; 4 gives a tiny model whose
            Jacobian is cheap to build by brute force).
        alpha: logit margin a (0.05 as in D8).
        dtype: float32 to train, float64 to check gradients.
        seed / rng: initialisation randomness.

    Returns:
        FlowModel over v in [0, 1)^(1, size, size), latent (T, p^2), base N(0, I).
    """
    for name, value in (("patch", patch), ("blocks", blocks), ("size", size)):
        if int(value) != value or value < 1:
            raise ValueError(f"tarflow_digits {name} must be a positive integer; got {value!r}.")
    if size % patch:
        raise ValueError(f"tarflow_digits patch must divide size ({size}); got patch={patch!r}. Use 1 or 2 on 8x8.")
    rng = rng if rng is not None else make_rng(seed)
    patchify = Patchify(int(patch), (1, int(size), int(size)))
    t, d = patchify.n_tokens, patchify.token_features
    layers = [Logit(alpha), patchify]
    for i in range(int(blocks)):
        if i > 0:
            layers.append(Reverse(t))  # the next block reads the tokens in the opposite order
        layers.append(
            TarFlowBlock(
                CausalTransformer(d, 2 * d, t, hidden, depth, n_heads, mlp_ratio, dtype=dtype, rng=rng), alpha_bound
            )
        )
    return FlowModel(Flow(layers), StandardNormal((t, d)), event_shape=(1, int(size), int(size)))
