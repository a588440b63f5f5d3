"""Reversible Heun on EDM: the linear-ODE recurrence, second-order convergence, exact inversion and encoding,
evaluation counts, input checks."""

import math

import pytest
import torch

from edm_bdia.analytic import GaussianDenoiser, toy_mixture_32x32_cond
from edm_bdia.sample import karras_sigmas
from edm_bdia.samplers.reversible_heun import (reversible_heun_encode, reversible_heun_invert,
                                               reversible_heun_sampler)
from helpers.nets import CountingNet, TinyNonlinearNet


def _latents(shape=(2, 3, 8, 8), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_one_pixel_gaussian_follows_the_two_by_two_recurrence():
    """On data N(mu, s^2) the ODE is linear, dx/dt = lambda(t) (x - mu) with lambda = t / (s^2 + t^2); with
    a = h lambda(t_i), b = h lambda(t_{i+1}) (lambda(t_{N-1}) on the last step) one step maps (x - mu, x^ - mu) by
    [[1 + b, (a + b (a - 1)) / 2], [2, a - 1]]. The sampler must equal the product of these matrices."""
    mu, s, n = 0.3, 0.2, 7
    net = GaussianDenoiser(torch.full((1, 1, 1), mu, dtype=torch.float64), torch.full((1, 1, 1), s, dtype=torch.float64))
    t = karras_sigmas(n).tolist()
    lam = [ti / (s ** 2 + ti ** 2) for ti in t[:-1]] + [t[-2] / (s ** 2 + t[-2] ** 2)]
    state = torch.tensor([[80.0 * 1.7 - mu], [80.0 * 1.7 - mu]], dtype=torch.float64)
    for i in range(n):
        h = t[i + 1] - t[i]
        a, b = h * lam[i], h * lam[i + 1]
        state = torch.tensor([[1 + b, (a + b * (a - 1)) / 2], [2.0, a - 1]], dtype=torch.float64) @ state
    x, x_hat = reversible_heun_sampler(net, torch.full((1, 1, 1, 1), 1.7, dtype=torch.float64), num_steps=n,
                                       return_state=True)
    assert math.isclose(x.item() - mu, state[0].item(), rel_tol=1e-9)
    assert math.isclose(x_hat.item() - mu, state[1].item(), rel_tol=1e-9)


def test_second_order_convergence_on_the_exact_gaussian():
    gen = torch.Generator().manual_seed(1)
    net = GaussianDenoiser(torch.randn(3, 4, 4, generator=gen, dtype=torch.float64) * 0.5,
                           0.1 + 0.4 * torch.rand(3, 4, 4, generator=gen, dtype=torch.float64))
    z = _latents((4, 3, 4, 4))
    exact = net.exact_solution(z, 80.0)
    errors = [((reversible_heun_sampler(net, z, num_steps=n) - exact) ** 2).mean().sqrt().item()
              for n in (64, 128, 256)]
    orders = [math.log2(e0 / e1) for e0, e1 in zip(errors[:-1], errors[1:])]
    assert all(1.8 < p < 2.3 for p in orders), orders


@pytest.mark.parametrize('num_steps', [5, 18])
def test_sample_invert_regenerate_round_trip(num_steps):
    net = toy_mixture_32x32_cond()
    z = _latents((3, 3, 32, 32), seed=2)
    labels = torch.eye(10)[[1, 4, 7]]
    x_last, x_hat_last = reversible_heun_sampler(net, z, labels, num_steps=num_steps, return_state=True)
    x0, x_hat0 = reversible_heun_invert(net, x_last, x_hat_last, labels, num_steps=num_steps)
    t0 = karras_sigmas(num_steps)[0]
    assert _rel_err(x0 / t0, z) <= 1e-9 and _rel_err(x_hat0 / t0, z) <= 1e-9
    regenerated = reversible_heun_sampler(net, None, labels, num_steps=num_steps, start_state=(x0, x_hat0))
    assert _rel_err(regenerated, x_last) <= 1e-9


def test_encoded_images_regenerate_exactly():
    net = TinyNonlinearNet(label_dim=4)
    images = torch.tanh(_latents(seed=3))
    labels = torch.eye(4)[[3, 1]]
    state = reversible_heun_encode(net, images, labels, num_steps=12)
    assert _rel_err(reversible_heun_sampler(net, None, labels, num_steps=12, start_state=state), images) <= 1e-9


@pytest.mark.parametrize('num_steps', [2, 9])
def test_network_evaluations(num_steps):
    net = CountingNet(TinyNonlinearNet())
    state = reversible_heun_sampler(net, _latents(), num_steps=num_steps, return_state=True)
    assert net.calls == num_steps + 1
    net.calls = 0
    reversible_heun_invert(net, *state, num_steps=num_steps)
    assert net.calls == num_steps + 1


def test_input_errors_name_the_argument():
    net = TinyNonlinearNet()
    z = _latents()
    with pytest.raises(ValueError, match='exactly one of latents and start_state'):
        reversible_heun_sampler(net, z, start_state=(z, z))
    with pytest.raises(ValueError, match='exactly one of latents and start_state'):
        reversible_heun_sampler(net, None)
    with pytest.raises(ValueError, match='start_state must be a pair'):
        reversible_heun_sampler(net, None, start_state=z)
    with pytest.raises(ValueError, match='different shapes'):
        reversible_heun_invert(net, z, z[:1])
    with pytest.raises(ValueError, match='num_steps'):
        reversible_heun_sampler(net, z, num_steps=1)
