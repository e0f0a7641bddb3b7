"""Continuous normalizing flows trained by flow matching.

    time_embedding   sinusoidal features phi(t) of the time
    velocity_field   v(x, t): an MLP over [x, phi(t)], its backward, its exact divergence
    ode              fixed-step Euler and RK4
    model            ContinuousFlowModel: log_prob by the instantaneous change of variables, sample
    flow_matching    the conditional flow matching loss and its training loop

Time runs from noise (t = 0) to data (t = 1); ``forward`` maps data to latent.
"""

from .flow_matching import fit_flow_matching, flow_matching_loss_and_backward
from .model import ContinuousFlowModel
from .ode import euler_step, odeint, rk4_step
from .time_embedding import time_features
from .velocity_field import VelocityField

__all__ = [
    "ContinuousFlowModel",
    "VelocityField",
    "euler_step",
    "fit_flow_matching",
    "flow_matching_loss_and_backward",
    "odeint",
    "rk4_step",
    "time_features",
]
