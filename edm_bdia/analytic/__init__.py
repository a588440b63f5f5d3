"""Denoisers with exact answers and the NVlabs network interface: no training, no download.

- `GaussianDenoiser`: data ~ N(mu, diag(s^2)); the probability-flow ODE has a closed-form solution.
- `GaussianMixtureDenoiser`: a class-conditional Gaussian mixture with low-rank plus isotropic covariances; exact
  D(x; sigma) (the posterior mean) and exact class posterior p(class | x_sigma).
- `toy_mixture_32x32_cond()`: the package's built-in offline model, `TOY_MODEL_NAME` = 'toy-mixture-32x32-cond'.
- `sharp_mixture()`, `grid_mixture_2d()`: solver-study testbeds (near-point masses in 3x32x32; a 2-D grid of modes).

All compute and return float64 and expose `img_resolution`, `img_channels`, `label_dim`, `sigma_min`, `sigma_max`,
`round_sigma` and `forward(x, sigma, class_labels=None)` like NVlabs' preconditioned networks.
"""

from .base import AnalyticDenoiser
from .gaussian import GaussianDenoiser
from .mixture import GaussianMixtureDenoiser
from .testbeds import grid_mixture_2d, sharp_mixture
from .toy_model import TOY_MODEL_NAME, toy_mixture_32x32_cond

__all__ = ['AnalyticDenoiser', 'GaussianDenoiser', 'GaussianMixtureDenoiser', 'TOY_MODEL_NAME',
           'toy_mixture_32x32_cond', 'sharp_mixture', 'grid_mixture_2d']
