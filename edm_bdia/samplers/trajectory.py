"""All states of a sampling, inversion or edit run, for plots and research (`keep_trajectory=True`)."""

from typing import NamedTuple

import torch


class Trajectory(NamedTuple):
    """`states[j]` is the float64 state at noise level `sigmas[j]`, in the sampler's order (noise to data).

    states: [K, batch, channels, height, width]; sigmas: [K]. x / sigma at the noisiest level are the latents
    when that level is t_0.
    """
    sigmas: torch.Tensor
    states: torch.Tensor


def trajectory(t_steps, first, states):
    """The Trajectory of `states` = x_first, x_first+1, ..., x_N (sampler order)."""
    return Trajectory(sigmas=t_steps[first:].clone(), states=torch.stack(states))
