"""Noise-level discretizations and the sigma(t) / s(t) schedule families of the EDM paper (Karras et al. 2022, Table 1)."""

import numpy as np
import torch

from .checks import check_num_steps


def karras_sigmas(num_steps, sigma_min=0.002, sigma_max=80, rho=7, net=None, device=None):
    """Float64 noise levels t_0 > ... > t_{N-1} followed by t_N = 0 (EDM eq. 5).

    With `net`, the range is clamped to `[net.sigma_min, net.sigma_max]` and the levels are rounded with
    `net.round_sigma`, as NVlabs' `edm_sampler` does.
    """
    check_num_steps(num_steps)
    if net is not None:
        sigma_min = max(sigma_min, net.sigma_min)
        sigma_max = min(sigma_max, net.sigma_max)
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    # EDM eq. 5: t_i = (sigma_max^(1/rho) + i/(N-1) * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho
    t = (sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    if net is not None:
        t = net.round_sigma(t)
    return torch.cat([t, torch.zeros_like(t[:1])])


def _as_time(t):
    """A time value as a tensor; Python numbers become float64 (not torch's default float32)."""
    return t if torch.is_tensor(t) else torch.tensor(t, dtype=torch.float64)


class VPSigma:
    """VP noise level sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1) (EDM Table 1), its derivative and inverse."""

    def __init__(self, beta_d, beta_min):
        self.beta_d = beta_d
        self.beta_min = beta_min

    def __call__(self, t):
        t = _as_time(t)
        return ((0.5 * self.beta_d * (t ** 2) + self.beta_min * t).exp() - 1).sqrt()

    def deriv(self, t):
        t = _as_time(t)
        # d sigma/dt = (beta_d t + beta_min) e^(...) / (2 sigma)
        return 0.5 * (self.beta_min + self.beta_d * t) * (self(t) + 1 / self(t))

    def inv(self, sigma):
        sigma = _as_time(sigma)
        # Solve beta_d t^2/2 + beta_min t = ln(1 + sigma^2) for t >= 0.
        return ((self.beta_min ** 2 + 2 * self.beta_d * (1 + sigma ** 2).log()).sqrt() - self.beta_min) / self.beta_d


class VESigma:
    """VE noise level sigma(t) = sqrt(t) (EDM Table 1)."""

    def __call__(self, t):
        return _as_time(t).sqrt()

    def deriv(self, t):
        return 0.5 / _as_time(t).sqrt()

    def inv(self, sigma):
        return _as_time(sigma) ** 2


class LinearSigma:
    """EDM's choice sigma(t) = t (EDM Table 1)."""

    def __call__(self, t):
        return _as_time(t)

    def deriv(self, t):
        return torch.ones_like(_as_time(t))

    def inv(self, sigma):
        return _as_time(sigma)


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
    """s(t) = 1."""

    def __call__(self, t):
        return torch.ones_like(_as_time(t))

    def deriv(self, t):
        return torch.zeros_like(_as_time(t))


VP_BETA_D = 19.9  # NVlabs default since commit 62072d2 (issue #5); the paper's value
VP_BETA_MIN = 0.1
DISCRETIZATIONS = ('vp', 've', 'iddpm', 'edm')


def default_sigma_range(discretization, epsilon_s=1e-3):
    """Default (sigma_min, sigma_max) of each discretization of NVlabs' ablation sampler."""
    if discretization not in DISCRETIZATIONS:
        raise ValueError(f"discretization must be one of {', '.join(DISCRETIZATIONS)}, not {discretization!r}")
    vp = VPSigma(VP_BETA_D, VP_BETA_MIN)
    return {
        'vp': (float(vp(epsilon_s)), float(vp(1))),
        've': (0.02, 100),
        'iddpm': (0.002, 81),
        'edm': (0.002, 80),
    }[discretization]


def iddpm_levels(M=1000, C_1=0.001, C_2=0.008, device=None):
    """The iDDPM noise levels u_0 > ... > u_M = 0 (EDM Table 1, Nichol & Dhariwal's cosine schedule), float64."""
    def alpha_bar(j):
        # alpha_bar(j) = sin^2(pi/2 * j / (M (C_2 + 1)))
        return (0.5 * np.pi * j / M / (C_2 + 1)).sin() ** 2

    u = torch.zeros(M + 1, dtype=torch.float64, device=device)
    for j in torch.arange(M, 0, -1, device=device):
        # u_{j-1} = sqrt((u_j^2 + 1) / max(alpha_bar(j-1) / alpha_bar(j), C_1) - 1)
        u[j - 1] = ((u[j] ** 2 + 1) / (alpha_bar(j - 1) / alpha_bar(j)).clip(min=C_1) - 1).sqrt()
    return u


def discretize_sigmas(discretization, num_steps, sigma_min, sigma_max, rho, epsilon_s, M, C_1, C_2, device=None):
    """The N noise levels sigma_0 > ... > sigma_{N-1} of a discretization (EDM Table 1, 'time steps' row)."""
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    if discretization == 'vp':
        # t_i = 1 + i/(N-1) (epsilon_s - 1), sigma_i = sigma_vp(t_i)
        t = 1 + i / (num_steps - 1) * (epsilon_s - 1)
        return VPSigma(VP_BETA_D, VP_BETA_MIN)(t)
    if discretization == 've':
        # t_i = sigma_max^2 (sigma_min^2 / sigma_max^2)^(i/(N-1)), sigma_i = sqrt(t_i)
        t = (sigma_max ** 2) * ((sigma_min ** 2 / sigma_max ** 2) ** (i / (num_steps - 1)))
        return VESigma()(t)
    if discretization == 'iddpm':
        # sigma_i = u_{floor(j0 + (M-1-j0) i/(N-1) + 1/2)} over the levels inside [sigma_min, sigma_max]
        u = iddpm_levels(M, C_1, C_2, device=device)
        u_in_range = u[(u >= sigma_min) & (u <= sigma_max)]
        return u_in_range[((len(u_in_range) - 1) / (num_steps - 1) * i).round().to(torch.int64)]
    if discretization == 'edm':
        return karras_sigmas(num_steps, sigma_min, sigma_max, rho, device=device)[:-1]
    raise ValueError(f"discretization must be one of {', '.join(DISCRETIZATIONS)}, not {discretization!r}")


def schedule_functions(schedule, scaling):
    """(sigma(t), s(t)) objects for the ablation sampler's `schedule` and `scaling` options."""
    sigma = {
        'vp': lambda: VPSigma(VP_BETA_D, VP_BETA_MIN),
        've': VESigma,
        'linear': LinearSigma,
    }.get(schedule)
    if sigma is None:
        raise ValueError(f"schedule must be one of vp, ve, linear, not {schedule!r}")
    sigma = sigma()
    if scaling == 'vp':
        return sigma, VPScaling(sigma)
    if scaling == 'none':
        return sigma, NoScaling()
    raise ValueError(f"scaling must be one of vp, none, not {scaling!r}")
