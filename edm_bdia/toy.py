"""Analytic denoisers with the NVlabs network interface: exact D(x; sigma), no training, no download.

- `GaussianDenoiser`: data ~ N(mu, diag(s^2)); the probability-flow ODE has a closed-form solution.
- `GaussianMixtureDenoiser`: a class-conditional Gaussian mixture whose components have low-rank plus isotropic
  covariance; D(x; sigma) is the exact posterior mean. `toy_mixture_32x32_cond()` builds the package's built-in
  offline model (`TOY_MODEL_NAME`), 10 classes of visually distinct 32x32 RGB patterns.

Both compute in float64 and return float64, and expose `img_resolution`, `img_channels`, `label_dim`, `sigma_min`,
`sigma_max`, `round_sigma` and `forward(x, sigma, class_labels=None)` like NVlabs' preconditioned networks.
"""

import math

import numpy as np
import torch

TOY_MODEL_NAME = 'toy-mixture-32x32-cond'


class AnalyticDenoiser(torch.nn.Module):
    """Shared NVlabs-style interface: the full noise range and identity rounding of sigma."""

    sigma_min = 0
    sigma_max = float('inf')

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)

    @staticmethod
    def _per_sample_sigma(sigma, batch_size, device):
        """sigma as a float64 [batch] tensor (accepts a scalar, a 0-dim tensor or one value per sample)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=device).reshape(-1)
        return sigma.expand(batch_size) if sigma.numel() == 1 else sigma


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

    def exact_solution(self, latents, sigma_max, sigma=0):
        """The PF-ODE state at noise level `sigma` starting from x(sigma_max) = latents * sigma_max.

        dx/dt = (x - D(x; t)) / t = (x - mu) t / (s^2 + t^2), so x(t) - mu is proportional to sqrt(s^2 + t^2).
        """
        var = self.std ** 2
        x_start = latents.to(torch.float64) * sigma_max
        return self.mean + (x_start - self.mean) * ((var + sigma ** 2) / (var + sigma_max ** 2)).sqrt()


class GaussianMixtureDenoiser(AnalyticDenoiser):
    """Mixture of K Gaussians N(m_k, U_k U_k^T + v_k I) over flattened [C, H, W] images, grouped into classes.

    `means` [K, D], `factors` [K, D, r], `noise_var` [K], `component_class` [K] (class index of each component),
    `label_dim` classes. Conditioning on a one-hot (or weight) label restricts the prior to that class's components,
    equally weighted; no label (or an all-zero row) means all classes equally likely.
    """

    def __init__(self, means, factors, noise_var, component_class, label_dim, img_channels, img_resolution):
        super().__init__()
        self.register_buffer('means', torch.as_tensor(means, dtype=torch.float64))
        self.register_buffer('factors', torch.as_tensor(factors, dtype=torch.float64))
        self.register_buffer('noise_var', torch.as_tensor(noise_var, dtype=torch.float64))
        self.register_buffer('component_class', torch.as_tensor(component_class, dtype=torch.int64))
        self.label_dim, self.img_channels, self.img_resolution = label_dim, img_channels, img_resolution
        if self.means.shape[1] != img_channels * img_resolution ** 2:
            raise ValueError('means must be [K, C*H*W]')

    def _log_prior(self, class_labels, batch_size):
        """log pi_k per sample [B, K]: class weights from the labels, shared equally among a class's components."""
        one_hot = torch.nn.functional.one_hot(self.component_class, self.label_dim).to(torch.float64)  # [K, L]
        components_per_class = one_hot.sum(0)
        if class_labels is None:
            weights = torch.ones(batch_size, self.label_dim, dtype=torch.float64, device=self.means.device)
        else:
            weights = class_labels.to(torch.float64).reshape(-1, self.label_dim).expand(batch_size, -1).clone()
            weights[weights.sum(1) == 0] = 1  # an all-zero label row (NVlabs' "no label") means unconditional
        prior = (weights / components_per_class) @ one_hot.T
        return (prior / prior.sum(1, keepdim=True)).log()

    def forward(self, x, sigma, class_labels=None):
        batch_size = x.shape[0]
        x_flat = x.to(torch.float64).reshape(batch_size, -1)
        var = self._per_sample_sigma(sigma, batch_size, x.device)[:, None] ** 2  # sigma^2, [B, 1]
        dim = x_flat.shape[1]
        diff = x_flat[:, None, :] - self.means[None]  # x - m_k, [B, K, D]
        iso = self.noise_var[None] + var  # isotropic part of A_k = U U^T + (v_k + sigma^2) I, [B, K]
        z = torch.einsum('bkd,kdr->bkr', diff, self.factors)
        gram = torch.einsum('kdr,kds->krs', self.factors, self.factors)
        # Woodbury: A^-1 = (I - U M^-1 U^T / iso) / iso with M = I + U^T U / iso (r x r)
        small = torch.eye(gram.shape[-1], dtype=torch.float64, device=x.device) + gram[None] / iso[..., None, None]
        small_inv_z = torch.linalg.solve(small, z[..., None])[..., 0]
        a_inv_diff = (diff - torch.einsum('kdr,bkr->bkd', self.factors, small_inv_z) / iso[..., None]) / iso[..., None]
        mahalanobis = ((diff * diff).sum(-1) - (z * small_inv_z).sum(-1) / iso) / iso
        log_det = dim * iso.log() + torch.linalg.slogdet(small)[1]  # matrix determinant lemma
        log_post = self._log_prior(class_labels, batch_size) - 0.5 * (mahalanobis + log_det)
        weights = torch.softmax(log_post, dim=1)
        # E[x0 | x, k] = m_k + Sigma_k A_k^-1 (x - m_k) = x - sigma^2 A_k^-1 (x - m_k); mix with the posterior weights
        denoised = x_flat - var * torch.einsum('bk,bkd->bd', weights, a_inv_diff)
        return denoised.reshape(x.shape)

    def sample_data(self, class_labels, generator=None):
        """Exact draws x0 ~ p(x0 | class) for integer class labels [B]; float64 [B, C, H, W]."""
        class_labels = torch.as_tensor(class_labels, device=self.means.device)
        members = [torch.nonzero(self.component_class == c).flatten() for c in class_labels.tolist()]
        picks = torch.stack([m[torch.randint(len(m), (), generator=generator)] for m in members])
        rank = self.factors.shape[2]
        coeffs = torch.randn(len(picks), rank, dtype=torch.float64, generator=generator)
        noise = torch.randn(len(picks), self.means.shape[1], dtype=torch.float64, generator=generator)
        x0 = self.means[picks] + torch.einsum('bdr,br->bd', self.factors[picks], coeffs) + \
            self.noise_var[picks, None].sqrt() * noise
        return x0.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution)

    def data_moments(self, class_label=None):
        """Exact mean [D] and covariance [D, D] of the data (of one class, or of all classes equally weighted)."""
        if class_label is None:
            log_prior = self._log_prior(None, 1)[0]
        else:
            log_prior = self._log_prior(torch.nn.functional.one_hot(torch.tensor([class_label]), self.label_dim), 1)[0]
        prior = log_prior.exp()
        mean = prior @ self.means
        # Cov = sum_k pi_k (U_k U_k^T + v_k I + m_k m_k^T) - mu mu^T
        second = torch.einsum('k,kdr,ker->de', prior, self.factors, self.factors) + \
            torch.einsum('k,kd,ke->de', prior, self.means, self.means)
        second += torch.diag(torch.full_like(mean, float(prior @ self.noise_var)))
        return mean, second - torch.outer(mean, mean)


def _class_patterns(resolution):
    """Ten visually distinct pattern families p_c(u, v) in [-1, 1] on a [-1, 1]^2 grid, [10, H, W]."""
    coords = torch.linspace(-1, 1, resolution, dtype=torch.float64)
    v, u = torch.meshgrid(coords, coords, indexing='ij')
    r, theta = (u ** 2 + v ** 2).sqrt(), torch.atan2(v, u)
    return torch.stack([
        torch.sin(2.5 * math.pi * v),  # horizontal stripes
        torch.sin(2.5 * math.pi * u),  # vertical stripes
        torch.sin(2 * math.pi * (u + v)),  # diagonal stripes
        torch.tanh(4 * torch.sin(2 * math.pi * u) * torch.sin(2 * math.pi * v)),  # checkerboard
        torch.sin(4 * math.pi * r),  # rings
        torch.tanh(10 * (0.55 - r)),  # disc
        torch.tanh(10 * (0.22 - torch.minimum(u.abs(), v.abs()))),  # cross
        torch.sin(4 * theta),  # pinwheel
        torch.tanh(6 * torch.cos(3 * math.pi * u) * torch.cos(3 * math.pi * v) - 2),  # dots
        torch.tanh(10 * (0.7 - (u.abs() + v.abs()))),  # diamond
    ])


def toy_mixture_32x32_cond(device=None, seed=0, resolution=32, components_per_class=2, rank=4, pixel_std=0.05,
                           variation_std=0.12):
    """The built-in model: 10 classes x `components_per_class` Gaussians of 32x32 RGB patterns.

    Each class has a pattern family and two colours drawn from `seed`; its second component is the same pattern
    shifted by a quarter of the image. The low-rank factors vary brightness, the two colours and the pattern's phase.
    """
    rng = np.random.RandomState(seed)
    patterns = _class_patterns(resolution)
    num_classes, channels = len(patterns), 3
    means, factors, component_class = [], [], []
    for c in range(num_classes):
        colours = torch.as_tensor(rng.uniform(-0.85, 0.85, size=(2, channels)), dtype=torch.float64)
        for j in range(components_per_class):
            p = torch.roll(patterns[c], shifts=(j * resolution // 4,) * 2, dims=(0, 1))
            mix = ((p + 1) / 2)[None]  # weight of the foreground colour, [1, H, W]
            mean = colours[1, :, None, None] + mix * (colours[0] - colours[1])[:, None, None]
            directions = torch.stack([
                torch.ones_like(mean),  # brightness
                mix * torch.as_tensor(rng.normal(size=channels))[:, None, None],  # foreground colour
                (1 - mix) * torch.as_tensor(rng.normal(size=channels))[:, None, None],  # background colour
                (torch.roll(mean, (1, 1), dims=(1, 2)) - mean),  # phase (a one-pixel diagonal shift)
            ][:rank]).reshape(rank, -1)
            rms = directions.pow(2).mean(1, keepdim=True).sqrt()
            factors.append((directions / rms * variation_std).T)
            means.append(mean.reshape(-1))
            component_class.append(c)
    net = GaussianMixtureDenoiser(torch.stack(means), torch.stack(factors),
                                  torch.full((len(means),), pixel_std ** 2, dtype=torch.float64),
                                  component_class, num_classes, channels, resolution)
    return net.to(device) if device is not None else net
