"""Feature statistics for FID: float64 count, sum and Gram matrix per rank, one all-reduce, unbiased covariance.

Matches EDM's fid.py (docs/fid.md, 'Unbiased covariance'): mu = sum/N, sigma = (Gram - N mu mu^T) / (N - 1).
"""

import torch

from edm_bdia.fid.errors import FidError
from edm_bdia import distributed


class TooFewFeaturesError(FidError):
    """Fewer than two feature vectors: the unbiased covariance is undefined."""


class FeatureStats:
    """Running float64 sums of features ``f`` [n, dim]: ``count``, ``sum = sum_i f_i``, ``gram = sum_i f_i f_i^T``."""

    def __init__(self, dim: int, device='cpu'):
        self.dim = int(dim)
        self.count = 0
        self.sum = torch.zeros(self.dim, dtype=torch.float64, device=device)
        self.gram = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=device)

    def update(self, features: torch.Tensor):
        """Add a batch of feature vectors (any float dtype; accumulated in float64 on the stats' device)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f'features must have shape [n, {self.dim}], got {tuple(features.shape)}')
        f = features.to(device=self.sum.device, dtype=torch.float64)
        self.count += f.shape[0]
        self.sum += f.sum(dim=0)
        self.gram.addmm_(f.T, f)  # gram += f^T f

    def all_reduce(self):
        """Sum count, sum and Gram over all ranks in one collective (a no-op in a single process)."""
        packed = torch.cat([torch.tensor([float(self.count)], dtype=torch.float64, device=self.sum.device),
                            self.sum, self.gram.flatten()])
        distributed.all_reduce_sum_(packed)
        self.count = int(round(packed[0].item()))  # float64 holds counts exactly up to 2**53
        self.sum = packed[1:1 + self.dim]
        self.gram = packed[1 + self.dim:].view(self.dim, self.dim)

    def mean_cov(self):
        """(mu float64 [dim], sigma float64 [dim, dim]) as numpy, with the unbiased (N - 1) covariance."""
        n = self.count
        if n < 2:
            raise TooFewFeaturesError(f'FID statistics need at least 2 images, got {n}')
        mu = self.sum / n
        sigma = (self.gram - n * torch.outer(mu, mu)) / (n - 1)  # unbiased covariance
        sigma = (sigma + sigma.T) / 2  # exact symmetry; the Gram update is symmetric only up to rounding
        return mu.cpu().numpy(), sigma.cpu().numpy()
