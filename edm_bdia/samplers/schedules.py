"""Noise-level discretizations and the sigma(t) / s(t) schedule families of the EDM paper (Karras et al. 2022, Table 1).

The arithmetic follows NVlabs' `generate.py` operation by operation, with the same operand types (Python numbers,
NumPy float64 scalars, float64 tensors): that is what makes the samplers bit-identical to it, on CPU and CUDA alike.
docs/samplers-ablation.md explains the table and the VP refit.
"""

import functools

import numpy as np
import torch

from edm_bdia.errors import ArgumentError

from .checks import check_choice, check_network_sigma_range, check_num_steps, check_positive, check_sigma_range


def clamp_to_network(net, sigma_min, sigma_max):
    """(sigma_min, sigma_max) narrowed to the noise levels `net` supports, as NVlabs' samplers do; never empty."""
    clamped_min = max(sigma_min, net.sigma_min)
    clamped_max = min(sigma_max, net.sigma_max)
    check_network_sigma_range(clamped_min, clamped_max, net, requested=(sigma_min, sigma_max))
    return clamped_min, clamped_max


def karras_sigmas(num_steps, sigma_min=0.002, sigma_max=80, rho=7, net=None, device=None, dtype=torch.float64):
    """Noise levels t_0 > ... > t_{N-1} followed by t_N = 0 (EDM eq. 5), computed in `dtype` (float64, as NVlabs'
    EDM; EDM2 computes them in float32).

    With `net`, the range is clamped to `[net.sigma_min, net.sigma_max]` and the levels are rounded with
    `net.round_sigma`, as NVlabs' EDM `edm_sampler` does (EDM2's does neither).
    """
    check_num_steps(num_steps)
    check_sigma_range(sigma_min, sigma_max)
    check_positive(rho, 'rho')
    if net is not None:
        sigma_min, sigma_max = clamp_to_network(net, sigma_min, sigma_max)
    i = torch.arange(num_steps, dtype=dtype, device=device)
    # EDM eq. 5: t_i = (sigma_max^(1/rho) + i/(N-1) * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho
    t = (sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    if net is not None:
        t = net.round_sigma(t)
    return torch.cat([t, torch.zeros_like(t[:1])])


class VPSigma:
    """VP noise level sigma(t) = sqrt(e^(beta_d t^2 / 2 + beta_min t) - 1) (EDM Table 1), its derivative and inverse.

    Takes Python numbers (the default range) or float64 tensors (the sampler's time steps); `np.e ** (...)` and
    `** 0.5` rather than exp() / sqrt() because that is NVlabs' arithmetic, and the last bit depends on it.
    """

    def __init__(self, beta_d, beta_min):
        self.beta_d = beta_d
        self.beta_min = beta_min

    @classmethod
    def through(cls, sigma_min, sigma_max, epsilon_s):
        """The VP schedule with sigma(epsilon_s) = sigma_min and sigma(1) = sigma_max (NVlabs' refit of the betas).

        ln(1 + sigma^2) = beta_d t^2 / 2 + beta_min t at t = 1 and t = epsilon_s, solved for beta_d and beta_min;
        NumPy float64 scalars, as in NVlabs.
        """
        log_max = np.log(sigma_max ** 2 + 1)  # = beta_d / 2 + beta_min
        # ln(1 + sigma_min^2) / epsilon_s - ln(1 + sigma_max^2) = beta_d (epsilon_s - 1) / 2
        beta_d = 2 * (np.log(sigma_min ** 2 + 1) / epsilon_s - log_max) / (epsilon_s - 1)
        return cls(beta_d=beta_d, beta_min=log_max - 0.5 * beta_d)

    def __call__(self, t):
        return (np.e ** (0.5 * self.beta_d * (t ** 2) + self.beta_min * t) - 1) ** 0.5

    def deriv(self, t):
        # d sigma/dt = (beta_d t + beta_min) e^(...) / (2 sigma) = (beta_min + beta_d t) (sigma + 1/sigma) / 2
        return 0.5 * (self.beta_min + self.beta_d * t) * (self(t) + 1 / self(t))

    def inv(self, sigma):
        # Root t >= 0 of beta_d t^2 / 2 + beta_min t = ln(1 + sigma^2); `sigma` is a tensor.
        return ((self.beta_min ** 2 + 2 * self.beta_d * (sigma ** 2 + 1).log()).sqrt() - self.beta_min) / self.beta_d


class VESigma:
    """VE noise level sigma(t) = sqrt(t) (EDM Table 1); `t` is a tensor."""

    def __call__(self, t):
        return t.sqrt()

    def deriv(self, t):
        return 0.5 / t.sqrt()

    def inv(self, sigma):
        return sigma ** 2


class LinearSigma:
    """EDM's choice sigma(t) = t (EDM Table 1); the derivative is the Python number 1, as in NVlabs."""

    def __call__(self, t):
        return t

    def deriv(self, t):
        return 1

    def inv(self, sigma):
        return sigma


class VPScaling:
    """VP signal scale s(t) = 1 / sqrt(1 + sigma(t)^2) and its derivative (EDM Table 1)."""

    def __init__(self, sigma):
        self.sigma = sigma

    def __call__(self, t):
        return 1 / (1 + self.sigma(t) ** 2).sqrt()

    def deriv(self, t):
        # ds/dt = -sigma sigma' s^3
        return -self.sigma(t) * self.sigma.deriv(t) * (self(t) ** 3)


class NoScaling:
    """s(t) = 1 (EDM Table 1, VE and EDM columns), as Python numbers like NVlabs."""

    def __call__(self, t):
        return 1

    def deriv(self, t):
        return 0


VP_BETA_D = 19.9  # NVlabs' default range uses the paper's beta_d since their commit 62072d2 (before: 19.1)
VP_BETA_MIN = 0.1
DISCRETIZATIONS = ('vp', 've', 'iddpm', 'edm')
SCHEDULES = ('vp', 've', 'linear')
SCALINGS = ('vp', 'none')


def default_sigma_range(discretization, epsilon_s=1e-3):
    """Default (sigma_min, sigma_max) of each discretization of NVlabs' ablation sampler (Python numbers)."""
    check_choice(discretization, 'discretization', DISCRETIZATIONS)
    if discretization == 'vp':
        paper_vp = VPSigma(VP_BETA_D, VP_BETA_MIN)
        return paper_vp(epsilon_s), paper_vp(1)  # sigma(epsilon_s), sigma(1) with the paper's betas
    return {'ve': (0.02, 100), 'iddpm': (0.002, 81), 'edm': (0.002, 80)}[discretization]


@functools.lru_cache(maxsize=8)
def _iddpm_levels(M, C_1, C_2, device):
    def alpha_bar(j):
        # alpha_bar(j) = sin^2(pi/2 * j / (M (C_2 + 1)))
        return (0.5 * np.pi * j / M / (C_2 + 1)).sin() ** 2

    u = torch.zeros(M + 1, dtype=torch.float64, device=device)
    for j in torch.arange(M, 0, -1, device=device):
        # u_{j-1} = sqrt((u_j^2 + 1) / max(alpha_bar(j-1) / alpha_bar(j), C_1) - 1)
        u[j - 1] = ((u[j] ** 2 + 1) / (alpha_bar(j - 1) / alpha_bar(j)).clip(min=C_1) - 1).sqrt()
    return u


def iddpm_levels(M=1000, C_1=0.001, C_2=0.008, device=None):
    """The iDDPM noise levels u_0 > ... > u_M = 0 (EDM Table 1, Nichol & Dhariwal's cosine schedule), float64.

    The recurrence is sequential (1000 small steps), so tables are cached; each call returns a fresh copy.
    """
    return _iddpm_levels(M, C_1, C_2, torch.device(device) if device is not None else None).clone()


def discretize_sigmas(discretization, num_steps, *, sigma_min, sigma_max, rho, vp_sigma, epsilon_s, M, C_1, C_2,
                      device=None):
    """The N noise levels sigma_0 > ... > sigma_{N-1} of a discretization (EDM Table 1, 'time steps' row).

    `vp_sigma` is the VP schedule refitted to (sigma_min, sigma_max) (`VPSigma.through`).
    """
    check_choice(discretization, 'discretization', DISCRETIZATIONS)
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    if discretization == 'vp':
        # t_i = 1 + i/(N-1) (epsilon_s - 1), sigma_i = sigma_vp(t_i)
        return vp_sigma(1 + i / (num_steps - 1) * (epsilon_s - 1))
    if discretization == 've':
        # t_i = sigma_max^2 (sigma_min^2 / sigma_max^2)^(i/(N-1)), sigma_i = sqrt(t_i)
        return VESigma()((sigma_max ** 2) * ((sigma_min ** 2 / sigma_max ** 2) ** (i / (num_steps - 1))))
    if discretization == 'iddpm':
        # sigma_i = u_j at evenly spaced, rounded positions among the u_j inside [sigma_min, sigma_max]
        # (Table 1: u_{floor(j0 + (M-1-j0) i/(N-1) + 1/2)}; NVlabs filters both ends and rounds half to even)
        u = iddpm_levels(M, C_1, C_2, device=device)
        u_in_range = u[(u >= sigma_min) & (u <= sigma_max)]
        if len(u_in_range) == 0:
            raise ArgumentError('sigma_min', f'and `sigma_max` [{sigma_min!r}, {sigma_max!r}]: no iDDPM noise level '
                                             f'lies in this range (M={M}: {u[-2].item():.3g} to {u[0].item():.3g}); '
                                             'widen the range')
        return u_in_range[((len(u_in_range) - 1) / (num_steps - 1) * i).round().to(torch.int64)]
    return karras_sigmas(num_steps, sigma_min, sigma_max, rho, device=device)[:-1]  # EDM eq. 5


def schedule_functions(schedule, scaling, vp_sigma):
    """(sigma(t), s(t)) objects for the ablation sampler's `schedule` and `scaling` options (EDM Table 1).

    `vp_sigma` is the VP schedule to use for schedule='vp' (NVlabs refits it to the sampler's noise range).
    """
    check_choice(schedule, 'schedule', SCHEDULES)
    check_choice(scaling, 'scaling', SCALINGS)
    sigma = {'vp': vp_sigma, 've': VESigma(), 'linear': LinearSigma()}[schedule]
    return sigma, (VPScaling(sigma) if scaling == 'vp' else NoScaling())
