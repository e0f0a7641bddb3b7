"""Building blocks for conditioner networks, each with a hand-written backward.

A building block maps ``y = block.forward(x)`` and ``dx = block.backward(dy)``;
it is not invertible and knows nothing about flows.
"""

from .activations import LeakyReLU, ReLU, SiLU, Tanh
from .conv2d import Conv2d
from .linear import Linear
from .mlp import MLP
from .module import Module
from .resnet import ResidualBlock, ResNet

__all__ = ["MLP", "Conv2d", "LeakyReLU", "Linear", "Module", "ReLU", "ResNet", "ResidualBlock", "SiLU", "Tanh"]
