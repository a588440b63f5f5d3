"""The NVlabs network interface shared by the analytic denoisers."""

import torch


class AnalyticDenoiser(torch.nn.Module):
    """Exact D(x; sigma) in float64, over the full noise range, with identity rounding of sigma.

    Subclasses set `img_channels`, `img_resolution`, `label_dim` and define `forward(x, sigma, class_labels=None)`.
    """

    sigma_min = 0
    sigma_max = float('inf')

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)

    @staticmethod
    def _per_sample_sigma(sigma, batch_size, device):
        """sigma as a float64 [batch] tensor (accepts a scalar, a 0-dim tensor or one value per sample)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=device).reshape(-1)
        return sigma.expand(batch_size) if sigma.numel() == 1 else sigma
