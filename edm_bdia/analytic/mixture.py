"""A class-conditional Gaussian mixture with its exact denoiser and exact class posterior."""

import torch

from .base import AnalyticDenoiser


class GaussianMixtureDenoiser(AnalyticDenoiser):
    """Mixture of K Gaussians N(m_k, U_k U_k^T + v_k I) over flattened [C, H, W] images, grouped into classes.

    `means` [K, D], `factors` [K, D, r] (r may be 0), `noise_var` [K], `component_class` [K] (class index of each
    component), `label_dim` classes. Conditioning on a one-hot (or weight) label restricts the prior to that class's
    components, equally weighted; no label (or an all-zero row) means all classes equally likely.
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

    def _posterior(self, x, sigma, class_labels):
        """(p(k | x_sigma) [B, K], A_k^-1 (x - m_k) [B, K, D] contracted with the caller's weights, sigma^2 [B, 1]).

        A_k = U_k U_k^T + (v_k + sigma^2) I is the covariance of x_sigma under component k. Everything is written
        with [B, D] x [D, K] products (no [B, K, D] tensor), which keeps many-component mixtures fast.
        """
        batch_size = x.shape[0]
        x_flat = x.to(torch.float64).reshape(batch_size, -1)
        var = self._per_sample_sigma(sigma, batch_size, x.device)[:, None] ** 2  # sigma^2, [B, 1]
        dim = x_flat.shape[1]
        iso = self.noise_var[None] + var  # isotropic part of A_k, [B, K]
        # |x - m_k|^2 and z_k = U_k^T (x - m_k) without forming x - m_k
        sq_dist = ((x_flat * x_flat).sum(1, keepdim=True) - 2 * x_flat @ self.means.T +
                   (self.means * self.means).sum(1)[None]).clamp(min=0)
        z = torch.einsum('bd,kdr->bkr', x_flat, self.factors) - torch.einsum('kd,kdr->kr', self.means, self.factors)
        gram = torch.einsum('kdr,kds->krs', self.factors, self.factors)
        # Woodbury: A^-1 = (I - U M^-1 U^T / iso) / iso with M = I + U^T U / iso (r x r)
        small = torch.eye(gram.shape[-1], dtype=torch.float64, device=x.device) + gram[None] / iso[..., None, None]
        small_inv_z = torch.linalg.solve(small, z[..., None])[..., 0]
        mahalanobis = (sq_dist - (z * small_inv_z).sum(-1) / iso) / iso
        log_det = dim * iso.log() + torch.linalg.slogdet(small)[1]  # matrix determinant lemma
        log_post = self._log_prior(class_labels, batch_size) - 0.5 * (mahalanobis + log_det)
        weights = torch.softmax(log_post, dim=1)

        def weighted_a_inv_diff(w):
            """sum_k w_k A_k^-1 (x - m_k) for weights w [B, K]: a [B, D] tensor."""
            w_iso = w / iso
            low_rank = torch.einsum('kdr,bkr->bd', self.factors, (w_iso / iso)[..., None] * small_inv_z)
            return x_flat * w_iso.sum(1, keepdim=True) - w_iso @ self.means - low_rank

        return weights, weighted_a_inv_diff, var

    def forward(self, x, sigma, class_labels=None):
        weights, weighted_a_inv_diff, var = self._posterior(x, sigma, class_labels)
        # E[x0 | x, k] = m_k + Sigma_k A_k^-1 (x - m_k) = x - sigma^2 A_k^-1 (x - m_k); mix with the posterior weights
        denoised = x.to(torch.float64).reshape(x.shape[0], -1) - var * weighted_a_inv_diff(weights)
        return denoised.reshape(x.shape)

    def class_posterior(self, x, sigma=0, class_labels=None):
        """The exact p(class | x) [B, label_dim] of images x at noise level `sigma` (0: clean images)."""
        weights, _, _ = self._posterior(x, sigma, class_labels)
        one_hot = torch.nn.functional.one_hot(self.component_class, self.label_dim).to(torch.float64)
        return weights @ one_hot

    def nearest_component(self, x, sigma=0):
        """The most probable component index [B] of images x at noise level `sigma`, all classes equally likely."""
        weights, _, _ = self._posterior(x, sigma, None)
        return weights.argmax(1)

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
