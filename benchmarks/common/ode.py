"""The probability-flow ODE of EDM (sigma(t) = t, s(t) = 1) as the benchmarks integrate it outside the samplers."""

import torch


def ode_derivative(net, x, t, class_labels):
    """dx/dt = (x - D(x; t)) / t in float64, whatever precision the network computes in (EDM eq. 4)."""
    return (x - net(x, t, class_labels).to(torch.float64)) / t
