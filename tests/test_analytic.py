"""The analytic denoisers against brute-force formulas and their defining properties."""

import numpy as np
import pytest
import torch

from edm_bdia.sample import StackedRandomGenerator, edm_sampler
from edm_bdia.analytic import (TOY_MODEL_NAME, GaussianDenoiser, GaussianMixtureDenoiser, grid_mixture_2d,
                               sharp_mixture, toy_mixture_32x32_cond)


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
    # the exact encoding of the clean endpoint returns the latents
    assert torch.allclose(net.exact_latents(net.exact_solution(latents, 80.0), 80.0), latents, rtol=1e-12, atol=1e-12)


def _small_mixture(seed=0, label_dim=2):
    gen = torch.Generator().manual_seed(seed)
    k, d, r = 4, 2 * 3 * 3, 2
    return GaussianMixtureDenoiser(torch.randn(k, d, generator=gen, dtype=torch.float64),
                                   0.5 * torch.randn(k, d, r, generator=gen, dtype=torch.float64),
                                   0.05 + 0.1 * torch.rand(k, generator=gen, dtype=torch.float64),
                                   [0, 0, 1, 1], label_dim, 2, 3)


def brute_force_posterior(net, x, sigma, prior):
    """(E[x0 | x], p(k | x)) with dense covariances and scipy's Gaussian densities (no Woodbury, no batching)."""
    from scipy.stats import multivariate_normal
    means, weights = [], []
    for xi in x.reshape(len(x), -1).numpy():
        terms, logps = [], []
        for k in range(len(net.means)):
            m, u, v = net.means[k].numpy(), net.factors[k].numpy(), net.noise_var[k].item()
            cov = u @ u.T + v * np.eye(len(m))
            a = cov + sigma ** 2 * np.eye(len(m))
            logps.append(np.log(prior[k]) + multivariate_normal(m, a).logpdf(xi) if prior[k] > 0 else -np.inf)
            terms.append(m + cov @ np.linalg.solve(a, xi - m))
        w = np.exp(np.array(logps) - max(logps))
        means.append((w[:, None] * np.array(terms)).sum(0) / w.sum())
        weights.append(w / w.sum())
    return torch.as_tensor(np.array(means)).reshape(x.shape), torch.as_tensor(np.array(weights))


def brute_force_posterior_mean(net, x, sigma, prior):
    return brute_force_posterior(net, x, sigma, prior)[0]


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


@pytest.mark.parametrize('sigma', [0.0, 0.3, 5.0])
def test_class_posterior_sums_the_exact_component_posterior(sigma):
    net = _small_mixture()
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * (1 + sigma)
    _, weights = brute_force_posterior(net, x, sigma, [0.25] * 4)
    expected = torch.stack([weights[:, :2].sum(1), weights[:, 2:].sum(1)], dim=1)  # components 0, 1 -> class 0
    assert torch.allclose(net.class_posterior(x, sigma), expected, rtol=1e-9, atol=1e-12)
    assert torch.equal(net.nearest_component(x, sigma), weights.argmax(1))


def test_isotropic_mixture_without_factors_is_exact():
    """Rank-0 components (the sharp testbeds) go through the same formulas: compare with the dense brute force."""
    gen = torch.Generator().manual_seed(5)
    net = GaussianMixtureDenoiser(torch.randn(3, 12, generator=gen, dtype=torch.float64),
                                  torch.zeros(3, 12, 0, dtype=torch.float64), torch.tensor([0.01, 0.02, 0.04]),
                                  [0, 1, 1], 2, 3, 2)
    x = torch.randn(5, 3, 2, 2, generator=gen, dtype=torch.float64)
    for sigma in (0.05, 1.0):
        assert torch.allclose(net(x, sigma), brute_force_posterior_mean(net, x, sigma, [0.5, 0.25, 0.25]), rtol=1e-9,
                              atol=1e-10)


def test_sharp_mixture_draws_belong_to_their_class_and_component_scale():
    net = sharp_mixture()
    assert (len(net.means), net.label_dim, net.img_channels, net.img_resolution) == (100, 10, 3, 32)
    assert torch.allclose(net.noise_var, torch.full((100,), 1e-4, dtype=torch.float64))
    classes = torch.arange(20) % 10
    x = net.sample_data(classes, generator=torch.Generator().manual_seed(6))
    assert torch.equal(net.class_posterior(x).argmax(1), classes)
    nearest = net.means[net.nearest_component(x)]
    assert abs((x.reshape(20, -1) - nearest).std().item() - 0.01) < 1e-3  # per-pixel std around the own mean
    # components lie far apart compared with their spread: the closest pair is > 100 stds away
    gaps = torch.cdist(net.means, net.means) + torch.eye(100, dtype=torch.float64) * 1e9
    assert gaps.min() / (0.01 * 3072 ** 0.5) > 100 ** 0.5


def test_grid_mixture_places_modes_on_a_grid_with_row_classes():
    net = grid_mixture_2d(modes_per_side=5, spacing=0.5, std=0.02)
    assert (len(net.means), net.label_dim, net.img_channels, net.img_resolution) == (25, 5, 2, 1)
    assert sorted(set(net.means[:, 0].tolist())) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    classes = torch.arange(200) % 5
    x = net.sample_data(classes, generator=torch.Generator().manual_seed(7))
    assert x.shape == (200, 2, 1, 1)
    assert torch.equal(net.class_posterior(x).argmax(1), classes)
    rows = ((x[:, 1, 0, 0] + 1) / 0.5).round().long()  # y coordinate gives the row
    assert torch.equal(rows, classes)
