"""Building blocks for conditioner networks, each with a hand-written backward.

A building block maps ``y = block.forward(x)`` and ``dx = block.backward(dy)``;
it is not invertible and knows nothing about flows.
"""

from .activations import LeakyReLU, ReLU, Tanh
from .conv2d import Conv2d
from .linear import Linear
from .made import MADE
from .masked_linear import MaskedLinear
from .mlp import MLP
from .module import Module
from .resnet import ResidualBlock, ResNet

__all__ = [
    "MADE",
    "MLP",
    "Conv2d",
    "LeakyReLU",
    "Linear",
    "MaskedLinear",
    "Module",
    "ReLU",
    "ResNet",
    "ResidualBlock",
    "Tanh",
]
