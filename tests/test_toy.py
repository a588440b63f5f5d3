"""The analytic denoisers against brute-force formulas and their defining properties."""

import numpy as np
import pytest
import torch

from edm_bdia.sample import StackedRandomGenerator, edm_sampler
from edm_bdia.toy import TOY_MODEL_NAME, GaussianDenoiser, GaussianMixtureDenoiser, toy_mixture_32x32_cond


def test_gaussian_exact_solution_solves_the_probability_flow_ode():
    gen = torch.Generator().manual_seed(0)
    net = GaussianDenoiser(torch.randn(2, 3, 3, generator=gen, dtype=torch.float64), 0.2 + torch.rand(2, 3, 3, generator=gen, dtype=torch.float64))
    latents = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    for t in (0.05, 1.0, 30.0):
        x = net.exact_solution(latents, 80.0, sigma=t)
        h = 1e-5 * t
        dxdt = (net.exact_solution(latents, 80.0, sigma=t + h) - net.exact_solution(latents, 80.0, sigma=t - h)) / (2 * h)
        assert torch.allclose(dxdt, (x - net(x, t)) / t, rtol=1e-6, atol=1e-9)
    assert torch.allclose(net.exact_solution(latents, 80.0, sigma=80.0), latents * 80.0, rtol=1e-15)


def _small_mixture(seed=0, label_dim=2):
    gen = torch.Generator().manual_seed(seed)
    k, d, r = 4, 2 * 3 * 3, 2
    return GaussianMixtureDenoiser(torch.randn(k, d, generator=gen, dtype=torch.float64),
                                   0.5 * torch.randn(k, d, r, generator=gen, dtype=torch.float64),
                                   0.05 + 0.1 * torch.rand(k, generator=gen, dtype=torch.float64),
                                   [0, 0, 1, 1], label_dim, 2, 3)


def brute_force_posterior_mean(net, x, sigma, prior):
    """E[x0 | x] with dense covariances and scipy's Gaussian densities (no Woodbury, no batching)."""
    from scipy.stats import multivariate_normal
    out = []
    for xi in x.reshape(len(x), -1).numpy():
        terms, logps = [], []
        for k in range(len(net.means)):
            m, u, v = net.means[k].numpy(), net.factors[k].numpy(), net.noise_var[k].item()
            cov = u @ u.T + v * np.eye(len(m))
            a = cov + sigma ** 2 * np.eye(len(m))
            logps.append(np.log(prior[k]) + multivariate_normal(m, a).logpdf(xi) if prior[k] > 0 else -np.inf)
            terms.append(m + cov @ np.linalg.solve(a, xi - m))
        w = np.exp(np.array(logps) - max(logps))
        out.append((w[:, None] * np.array(terms)).sum(0) / w.sum())
    return torch.as_tensor(np.array(out)).reshape(x.shape)


@pytest.mark.parametrize('sigma', [0.01, 0.7, 20.0])
def test_mixture_denoiser_is_the_exact_posterior_mean(sigma):
    net = _small_mixture()
    x = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * (1 + sigma)
    assert torch.allclose(net(x, sigma), brute_force_posterior_mean(net, x, sigma, [0.25] * 4), rtol=1e-9, atol=1e-10)
    labels = torch.tensor([[0.0, 1.0]] * 3)  # class 1 owns components 2 and 3
    assert torch.allclose(net(x, sigma, labels), brute_force_posterior_mean(net, x, sigma, [0, 0, 0.5, 0.5]),
                          rtol=1e-9, atol=1e-10)
    assert torch.equal(net(x, sigma, torch.zeros(3, 2)), net(x, sigma))  # all-zero labels = unconditional


def test_mixture_moments_match_its_exact_samples():
    net = _small_mixture()
    x = net.sample_data(torch.zeros(100_000, dtype=torch.int64), generator=torch.Generator().manual_seed(2))
    mean, cov = net.data_moments(class_label=0)
    flat = x.reshape(len(x), -1)
    assert torch.allclose(flat.mean(0), mean, atol=0.02)
    assert torch.allclose(torch.cov(flat.T), cov, atol=0.03)
    # Far above the data scale the denoiser returns the prior mean; near zero noise it returns its input.
    assert torch.allclose(net(flat[:2].reshape(2, 2, 3, 3) * 0 + 1e-3, 1e6, torch.tensor([[1.0, 0.0]] * 2)).reshape(2, -1),
                          mean.expand(2, -1), atol=1e-6)
    assert torch.allclose(net(x[:2], 1e-6), x[:2], atol=1e-9)


def test_builtin_model_interface_and_batch_independence():
    net = toy_mixture_32x32_cond()
    assert TOY_MODEL_NAME == 'toy-mixture-32x32-cond'
    assert (net.img_resolution, net.img_channels, net.label_dim) == (32, 3, 10)
    assert net.sigma_min == 0 and net.sigma_max == float('inf') and torch.equal(net.round_sigma(2.5), torch.tensor(2.5))
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    labels = torch.eye(10)[[0, 4, 4, 9, 2]]
    batch = net(x, 1.3, labels)
    for i in range(5):
        assert torch.allclose(net(x[i:i + 1], 1.3, labels[i:i + 1])[0], batch[i], rtol=0, atol=1e-13)


def test_builtin_model_classes_are_distinct_in_generated_images():
    """Class-conditional samples are closest to their own class's components (the grid shows the classes at a
    glance): distance to component k after removing its low-rank variations, |(I - P_k)(x - m_k)|."""
    net = toy_mixture_32x32_cond()
    seeds = list(range(20))
    rnd = StackedRandomGenerator('cpu', seeds)
    latents = rnd.randn([20, 3, 32, 32])
    classes = torch.arange(20) % 10
    images = edm_sampler(net, latents, torch.eye(10)[classes], randn_like=rnd.randn_like, num_steps=10)
    diff = images.reshape(20, 1, -1) - net.means[None]  # [20, K, D]
    q, _ = torch.linalg.qr(net.factors)  # orthonormal bases of the low-rank directions, [K, D, r]
    residual = diff - torch.einsum('kdr,bkr->bkd', q, torch.einsum('kdr,bkd->bkr', q, diff))
    distance = residual.norm(dim=-1)
    nearest_class = net.component_class[distance.argmin(1)]
    assert torch.equal(nearest_class, classes)
