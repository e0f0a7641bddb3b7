"""Building blocks for conditioner networks, each with a hand-written backward.

A building block maps ``y = block.forward(x)`` and ``dx = block.backward(dy)``;
it is not invertible and knows nothing about flows.
"""

from .activations import LeakyReLU, ReLU, SiLU, Tanh
from .attention import CausalSelfAttention
from .causal_transformer import CausalTransformer
from .conv2d import Conv2d
from .feed_forward import FeedForward
from .gelu import GELU
from .layer_norm import LayerNorm
from .linear import Linear
from .made import MADE
from .masked_linear import MaskedLinear
from .mlp import MLP
from .module import Module
from .patchify import patchify, unpatchify
from .positional_embedding import PositionalEmbedding
from .resnet import ResidualBlock, ResNet
from .transformer_block import TransformerBlock

__all__ = [
    "GELU",
    "MADE",
    "MLP",
    "CausalSelfAttention",
    "CausalTransformer",
    "Conv2d",
    "FeedForward",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MaskedLinear",
    "Module",
    "PositionalEmbedding",
    "ReLU",
    "ResNet",
    "ResidualBlock",
    "SiLU",
    "Tanh",
    "TransformerBlock",
    "patchify",
    "unpatchify",
]
