"""EDM Heun sampler, explicit schedules, draw-free sampling and the per-seed RNG, against independent restatements."""

import math

import numpy as np
import pytest
import torch

from edm_bdia.sample import StackedRandomGenerator, bdia_sampler, edm_sampler, karras_sigmas
from edm_bdia.analytic import GaussianDenoiser
from helpers.nets import CountingNet, TinyNonlinearNet, karras_restated


def algorithm2_restated(net, latents, labels, randn_like, t, num_steps, S_churn, S_min, S_max, S_noise):
    """EDM Algorithm 2 line by line (Karras et al. 2022), float64 state, written independently of edm_bdia."""
    x = latents.to(torch.float64) * t[0]
    for i in range(num_steps):
        eps = randn_like(x)
        g = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t[i] <= S_max else 0
        t_hat = t[i] + g * t[i]
        x_hat = x + (t_hat ** 2 - t[i] ** 2).sqrt() * S_noise * eps
        d = (x_hat - net(x_hat, t_hat, labels).to(torch.float64)) / t_hat
        x_next = x_hat + (t[i + 1] - t_hat) * d
        if t[i + 1] != 0:
            d2 = (x_next - net(x_next, t[i + 1], labels).to(torch.float64)) / t[i + 1]
            x_next = x_hat + (t[i + 1] - t_hat) * (0.5 * d + 0.5 * d2)
        x = x_next
    return x


@pytest.mark.parametrize('churn', [dict(S_churn=0), dict(S_churn=30, S_min=0.05, S_max=50, S_noise=1.003)])
@pytest.mark.parametrize('label_dim', [0, 4])
@pytest.mark.parametrize('net_dtype', [torch.float32, torch.float64])
def test_edm_sampler_equals_algorithm2_bitwise(churn, label_dim, net_dtype):
    net = TinyNonlinearNet(label_dim=label_dim, dtype=net_dtype)
    seeds, num_steps = [3, 1, 4], 7
    full = dict(S_churn=0, S_min=0, S_max=float('inf'), S_noise=1) | churn

    def run(sampler):
        rnd = StackedRandomGenerator('cpu', seeds)
        latents = rnd.randn([len(seeds), 3, 8, 8])
        labels = torch.eye(label_dim)[rnd.randint(label_dim, size=[len(seeds)])] if label_dim else None
        return sampler(latents, labels, rnd.randn_like)

    ours = run(lambda z, c, r: edm_sampler(net, z, c, randn_like=r, num_steps=num_steps, **full))
    t = karras_sigmas(num_steps)
    ref = run(lambda z, c, r: algorithm2_restated(net, z, c, r, t, num_steps, **full))
    assert ours.dtype == torch.float64
    assert torch.equal(ours, ref)


@pytest.mark.parametrize('S_churn', [0, 10])
def test_edm_sampler_draws_once_per_step_and_evaluates_2n_minus_1(S_churn):
    net = CountingNet(TinyNonlinearNet())
    draws = []

    def randn_like(x):
        draws.append(x.dtype)
        return torch.randn_like(x)

    edm_sampler(net, torch.randn(2, 3, 8, 8), randn_like=randn_like, num_steps=6, S_churn=S_churn)
    assert draws == [torch.float64] * 6
    assert net.calls == 2 * 6 - 1


CHURN_WINDOW = dict(S_churn=30, S_min=0.05, S_max=50, S_noise=1.003)


@pytest.mark.parametrize('churn', [dict(S_churn=0), dict(S_churn=30, S_min=90, S_max=100)])
@pytest.mark.parametrize('net_dtype', [torch.float32, torch.float64])
def test_without_draws_the_images_equal_a_run_with_real_draws(churn, net_dtype):
    """randn_like=None skips the noise term of steps that do not churn (t_hat = t): same images, no draws."""
    net = TinyNonlinearNet(label_dim=4, dtype=net_dtype)
    rnd = StackedRandomGenerator('cpu', [7, 8, 9])
    latents, labels = rnd.randn([3, 3, 8, 8]), torch.eye(4)[[0, 2, 3]]
    with_draws = edm_sampler(net, latents, labels, randn_like=rnd.randn_like, num_steps=7, **churn)
    assert torch.equal(edm_sampler(net, latents, labels, randn_like=None, num_steps=7, **churn), with_draws)


def test_a_churning_step_without_randn_like_is_an_error_before_any_network_call():
    net = CountingNet(TinyNonlinearNet())
    inside = [i for i, t in enumerate(karras_restated(18)[:-1]) if 0.05 <= t <= 50]  # the steps that churn
    with pytest.raises(ValueError, match=rf'randn_like is None, but {len(inside)} steps churn \(the first is step '
                                         rf'{inside[0]} '):
        edm_sampler(net, torch.randn(2, 3, 8, 8), randn_like=None, num_steps=18, **CHURN_WINDOW)
    assert net.calls == 0


@pytest.mark.parametrize('churn', [dict(S_churn=0), CHURN_WINDOW])
def test_explicit_sigmas_follow_algorithm2_on_that_schedule(churn):
    net = TinyNonlinearNet(label_dim=4, dtype=torch.float32)
    latents, labels = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5)), torch.eye(4)[[1, 2]]
    sigmas = torch.tensor([60.0, 11.0, 3.5, 0.9, 0.2, 0.01, 0.0], dtype=torch.float64)
    full = dict(S_churn=0, S_min=0, S_max=float('inf'), S_noise=1) | churn

    def run(sampler):
        rnd = StackedRandomGenerator('cpu', [1, 2])
        return sampler(rnd.randn_like)

    ours = run(lambda r: edm_sampler(net, latents, labels, randn_like=r, sigmas=sigmas, **churn))
    ref = run(lambda r: algorithm2_restated(net, latents, labels, r, sigmas, len(sigmas) - 1, **full))
    assert torch.equal(ours, ref)
    # the default schedule passed explicitly is the default run, bit for bit
    assert torch.equal(edm_sampler(net, latents, labels, sigmas=karras_sigmas(8, net=net)),
                       edm_sampler(net, latents, labels, num_steps=8))


@pytest.mark.parametrize('kwargs, message', [
    (dict(sigmas=[80.0, 1.0, 0.5]), 'must end in 0'),
    (dict(sigmas=[80.0, 0.0]), 'at least 3 levels'),
    (dict(sigmas=[[80.0, 1.0, 0.0]]), 'must be 1-D'),
    (dict(sigmas=[80.0, 90.0, 1.0, 0.0]), 'strictly decreasing'),
    (dict(sigmas=[80.0, 1.0, 1.0, 0.0]), 'strictly decreasing'),
    (dict(sigmas=[80.0, float('nan'), 0.0]), 'finite'),
    (dict(sigmas=[float('inf'), 1.0, 0.0]), 'finite'),
    (dict(sigmas=[80.0, -1.0, 0.0]), 'every other level > 0'),
    (dict(sigmas='80 1 0'), 'sequence of noise levels'),
    (dict(sigmas=[80.0, 1.0, 0.0], num_steps=2), 'sigmas replaces num_steps.*drop num_steps'),
    (dict(sigmas=[80.0, 1.0, 0.0], sigma_max=50, rho=3), 'drop sigma_max, rho'),
])
def test_bad_explicit_sigmas_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        edm_sampler(TinyNonlinearNet(), torch.randn(2, 3, 8, 8), **kwargs)


def test_karras_sigmas_formula_range_and_net_clamping():
    t = karras_sigmas(18)
    assert t.dtype == torch.float64 and len(t) == 19 and t[-1] == 0
    assert torch.all(t[:-1] > t[1:])
    assert torch.allclose(t, karras_restated(18), rtol=1e-14, atol=0)
    assert t[0].item() == pytest.approx(80, rel=1e-14) and t[-2].item() == pytest.approx(0.002, rel=1e-14)

    class RoundingNet:
        sigma_min, sigma_max = 0.01, 20.0

        def round_sigma(self, sigma):
            return torch.as_tensor(sigma).round(decimals=3)

    clamped = karras_sigmas(10, net=RoundingNet())
    assert clamped[0] == 20.0 and clamped[-2] == 0.01
    assert torch.equal(clamped[:-1], clamped[:-1].round(decimals=3))


def _gaussian():
    gen = torch.Generator().manual_seed(0)
    mean = torch.rand(3, 4, 4, generator=gen, dtype=torch.float64) - 0.5
    std = 0.3 + 0.4 * torch.rand(3, 4, 4, generator=gen, dtype=torch.float64)
    return GaussianDenoiser(mean, std)


def _error_at_sigma_min(sampler, net, latents, num_steps, exact):
    """Max |x - exact| at the last nonzero noise level (before the fixed-size final Euler step to t = 0)."""
    states = {}
    sampler(net, latents, num_steps=num_steps,
            callback=lambda s: states.setdefault('x', s['x']) if s['i'] == num_steps - 2 else None)
    return (states['x'] - exact).abs().max().item()


def test_heun_and_euler_observed_orders_on_the_exact_gaussian_solution():
    net = _gaussian()
    latents = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = {'heun': [], 'euler': []}
    for n in (16, 32, 64):
        t = karras_sigmas(n)
        exact = net.exact_solution(latents, t[0], sigma=t[-2])
        errors['heun'].append(_error_at_sigma_min(edm_sampler, net, latents, n, exact))
        euler = lambda net, z, **kw: bdia_sampler(net, z, gamma=0, base='euler', **kw)  # plain Euler
        errors['euler'].append(_error_at_sigma_min(euler, net, latents, n, exact))
    heun_orders = np.log2(np.array(errors['heun'][:-1]) / np.array(errors['heun'][1:]))
    euler_orders = np.log2(np.array(errors['euler'][:-1]) / np.array(errors['euler'][1:]))
    assert np.all(np.abs(heun_orders - 2) < 0.3), (errors, heun_orders)
    assert np.all(np.abs(euler_orders - 1) < 0.3), (errors, euler_orders)


def test_stacked_generator_latents_depend_only_on_the_seed():
    full = StackedRandomGenerator('cpu', [5, 6, 7, 8]).randn([4, 3, 8, 8])
    part = StackedRandomGenerator('cpu', [7, 5]).randn([2, 3, 8, 8])
    assert torch.equal(part[0], full[2]) and torch.equal(part[1], full[0])
    assert torch.equal(StackedRandomGenerator('cpu', [2 ** 32 + 6]).randn([1, 3, 8, 8])[0], full[1])
    single = torch.randn([3, 8, 8], generator=torch.Generator().manual_seed(8))
    assert torch.equal(full[3], single)
    labels = StackedRandomGenerator('cpu', [5, 6]).randint(10, size=[2])
    assert labels.shape == (2,) and labels[0] == torch.randint(10, size=[], generator=torch.Generator().manual_seed(5))
    with pytest.raises(ValueError, match='batch size 3'):
        StackedRandomGenerator('cpu', [1, 2]).randn([3, 4])


@pytest.mark.parametrize('call, message', [
    (lambda net, z: edm_sampler(net, z, num_steps=1), 'num_steps must be an integer >= 2'),
    (lambda net, z: edm_sampler(net, z[:, :2]), r'network expects \[batch, 3, 8, 8\]'),
    (lambda net, z: edm_sampler(net, z[0]), '4-D tensor'),
    (lambda net, z: edm_sampler(net, z, torch.eye(3)[[0, 1]]), r'class_labels have shape \(2, 3\)'),
    (lambda net, z: edm_sampler(net, z, torch.eye(4)[[0, 1, 2]]), r'class_labels have shape \(3, 4\)'),
    (lambda net, z: edm_sampler(net, z, S_noise=-1), 'S_noise must be a finite number >= 0'),
    (lambda net, z: edm_sampler(net, z, S_churn=float('nan')), 'S_churn must be a number >= 0'),
    (lambda net, z: edm_sampler(net, z, sigma_min=5, sigma_max=1), r'sigma_min \(5\) must be below sigma_max'),
    (lambda net, z: edm_sampler(net, z, sigma_max=float('nan')), 'sigma_max must be a finite number > 0'),
    (lambda net, z: edm_sampler(net, z, sigma_min=float('inf')), 'sigma_min must be a finite number > 0'),
])
def test_sampler_input_errors(call, message):
    net = TinyNonlinearNet(label_dim=4)
    with pytest.raises(ValueError, match=message):
        call(net, torch.randn(2, 3, 8, 8))


def test_labels_on_an_unconditional_net_are_an_error():
    with pytest.raises(ValueError, match='unconditional'):
        edm_sampler(TinyNonlinearNet(), torch.randn(2, 3, 8, 8), torch.eye(4)[[0, 1]])
