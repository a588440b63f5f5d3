"""Data ~ N(mu, diag(s^2)): the one testbed whose probability-flow ODE has a closed-form solution."""

import torch

from .base import AnalyticDenoiser


class GaussianDenoiser(AnalyticDenoiser):
    """Data ~ N(mean, diag(std^2)) with mean and std of shape [C, H, W] (H = W)."""

    label_dim = 0

    def __init__(self, mean, std):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float64)
        std = torch.as_tensor(std, dtype=torch.float64).expand_as(mean)
        if mean.ndim != 3 or mean.shape[1] != mean.shape[2]:
            raise ValueError(f'mean must have shape [C, H, H], got {tuple(mean.shape)}')
        self.register_buffer('mean', mean)
        self.register_buffer('std', std.clone())
        self.img_channels, self.img_resolution = mean.shape[0], mean.shape[1]

    def forward(self, x, sigma, class_labels=None):
        x = x.to(torch.float64)
        sigma = self._per_sample_sigma(sigma, x.shape[0], x.device).reshape(-1, 1, 1, 1)
        var = self.std ** 2
        # Posterior mean of a Gaussian: D(x; sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu)
        return self.mean + var / (var + sigma ** 2) * (x - self.mean)

    def exact_transport(self, x, sigma_from, sigma_to):
        """The PF-ODE state at noise level `sigma_to` from state `x` at `sigma_from` (either direction).

        dx/dt = (x - D(x; t)) / t = (x - mu) t / (s^2 + t^2), so x(t) - mu is proportional to sqrt(s^2 + t^2).
        """
        var = self.std ** 2
        return self.mean + (x.to(torch.float64) - self.mean) * ((var + sigma_to ** 2) / (var + sigma_from ** 2)).sqrt()

    def exact_solution(self, latents, sigma_max, sigma=0):
        """The PF-ODE state at noise level `sigma` starting from x(sigma_max) = latents * sigma_max."""
        return self.exact_transport(latents.to(torch.float64) * sigma_max, sigma_max, sigma)

    def exact_latents(self, images, sigma_max):
        """The exact ODE encoding of clean images: x(sigma_max) / sigma_max for x(0) = images."""
        return self.exact_transport(images, 0, sigma_max) / sigma_max
