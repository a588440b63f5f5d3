"""BDIA on EDM: base-sampler equivalence, exact inversion and encoding, O-BELM, evaluation counts, input checks."""

import pytest
import torch

from edm_bdia.sample import bdia_encode, bdia_invert, bdia_sampler, edm_sampler, karras_sigmas
from edm_bdia.analytic import GaussianDenoiser
from sampler_nets import CountingNet, TinyNonlinearNet


def _latents(batch=2, seed=0):
    return torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def euler_restated(net, latents, t, labels=None):
    """Plain Euler on dx/dt = (x - D(x; t)) / t, written out independently."""
    x = latents.to(torch.float64) * t[0]
    for i in range(len(t) - 1):
        x = x + (t[i + 1] - t[i]) * ((x - net(x, t[i], labels).to(torch.float64)) / t[i])
    return x


def obelm_restated(net, latents, t):
    """O-BELM (Wang et al. 2024, eq. 18-19) in EDM coordinates (alpha = 1, sigma-bar = t), paper indexing:
    first step DDIM (= Euler), then x_{i-1} = a2 x_{i+1} + a1 x_i + b1 h_i eps with a2 = h_i^2/h_{i+1}^2,
    a1 = (h_{i+1}^2 - h_i^2)/h_{i+1}^2, b1 = -(h_i + h_{i+1})/h_{i+1}, h = sigma-bar step, eps = d(x_i)."""
    x_prev, x = None, latents.to(torch.float64) * t[0]
    for k in range(len(t) - 1):
        eps = (x - net(x, t[k]).to(torch.float64)) / t[k]
        if k == 0:
            x_new = x + (t[1] - t[0]) * eps
        else:
            h_i, h_ip1 = t[k] - t[k + 1], t[k - 1] - t[k]
            a2, a1, b1 = h_i ** 2 / h_ip1 ** 2, (h_ip1 ** 2 - h_i ** 2) / h_ip1 ** 2, -(h_i + h_ip1) / h_ip1
            x_new = a2 * x_prev + a1 * x + b1 * h_i * eps
        x_prev, x = x, x_new
    return x


@pytest.mark.parametrize('label_dim', [0, 4])
def test_gamma_zero_heun_is_edm_sampler_bitwise(label_dim):
    net = TinyNonlinearNet(label_dim=label_dim, dtype=torch.float32)
    labels = torch.eye(4)[[2, 0]] if label_dim else None
    z = _latents().float()
    assert torch.equal(bdia_sampler(net, z, labels, num_steps=8, gamma=0.0), edm_sampler(net, z, labels, num_steps=8))


def test_gamma_zero_euler_is_the_euler_sampler_bitwise():
    net = TinyNonlinearNet()
    z = _latents()
    assert torch.equal(bdia_sampler(net, z, num_steps=8, gamma=0, base='euler'), euler_restated(net, z, karras_sigmas(8)))


def test_obelm_gammas_and_sampler_match_the_belm_coefficients():
    # bdia.md §5.4: effective gamma_i for rho = 7, sigma in [0.002, 80], N = 18
    published = [0.562, 0.546, 0.529, 0.510, 0.490, 0.468, 0.445, 0.420, 0.392, 0.363, 0.330, 0.295, 0.257, 0.216,
                 0.173, 0.129, 0.131]
    from edm_bdia.samplers.bdia import bdia_gammas
    assert bdia_gammas('obelm', karras_sigmas(18)) == pytest.approx(published, abs=6e-4)
    net = TinyNonlinearNet()
    z = _latents()
    ours = bdia_sampler(net, z, num_steps=12, gamma='obelm', base='euler')
    assert _rel_err(ours, obelm_restated(net, z, karras_sigmas(12))) < 1e-12


def test_per_step_gamma_sequence_equals_the_scalar():
    net = TinyNonlinearNet()
    z = _latents()
    assert torch.equal(bdia_sampler(net, z, num_steps=6, gamma=[0.7] * 5), bdia_sampler(net, z, num_steps=6, gamma=0.7))
    assert not torch.equal(bdia_sampler(net, z, num_steps=6, gamma=[0.7, 0.7, 0.7, 0.7, 0.2]),
                           bdia_sampler(net, z, num_steps=6, gamma=0.7))


@pytest.mark.parametrize('base', ['heun', 'euler'])
@pytest.mark.parametrize('gamma', [1.0, 0.9, 0.5])
def test_sample_invert_regenerate_round_trip(gamma, base):
    net = TinyNonlinearNet(label_dim=4)
    labels = torch.eye(4)[[1, 3]]
    z = _latents()
    x_last, x_prev = bdia_sampler(net, z, labels, num_steps=18, gamma=gamma, base=base, return_pair=True)
    x0, x1 = bdia_invert(net, x_last, x_prev, labels, num_steps=18, gamma=gamma, base=base)
    t0 = karras_sigmas(18)[0]
    assert _rel_err(x0 / t0, z) <= 1e-9
    regenerated = bdia_sampler(net, None, labels, num_steps=18, gamma=gamma, base=base, start_pair=(x0, x1))
    assert _rel_err(regenerated, x_last) <= 1e-9


@pytest.mark.parametrize('gamma', [1.0, 0.5])
def test_encode_real_images_then_decode_returns_them(gamma):
    gen = torch.Generator().manual_seed(4)
    mean = 0.3 * torch.randn(3, 8, 8, generator=gen, dtype=torch.float64)
    net = GaussianDenoiser(mean, 0.4)
    images = mean + 0.4 * torch.randn(64, 3, 8, 8, generator=gen, dtype=torch.float64)  # true data samples
    x0, x1 = bdia_encode(net, images, num_steps=18, gamma=gamma)
    decoded = bdia_sampler(net, None, num_steps=18, gamma=gamma, start_pair=(x0, x1))
    assert _rel_err(decoded, images) <= 1e-9
    # Noise-like: close to the latents of the exact ODE flow, x(T) / T with x(T) - mu = (x0 - mu) sqrt(s^2 + T^2) / s,
    # up to the sampler's own discretisation error at 18 steps (BDIA-Heun's output std is ~1.15x off here).
    t0 = karras_sigmas(18)[0]
    latents, exact = x0 / t0, (mean + (images - mean) * (0.4 ** 2 + t0 ** 2).sqrt() / 0.4) / t0
    assert torch.corrcoef(torch.stack([latents.flatten(), exact.flatten()]))[0, 1] > 0.99
    assert abs(latents.std().item() - 1) < 0.15


def test_encode_on_a_nonlinear_net_round_trips():
    net = TinyNonlinearNet()
    images = torch.tanh(_latents(seed=5))
    pair = bdia_encode(net, images, num_steps=18, gamma=0.9)
    assert _rel_err(bdia_sampler(net, None, num_steps=18, gamma=0.9, start_pair=pair), images) <= 1e-9


@pytest.mark.parametrize('base, expected', [('heun', lambda n: 2 * n - 1), ('euler', lambda n: n)])
def test_network_evaluation_counts(base, expected):
    n = 7
    net = CountingNet(TinyNonlinearNet())
    pair = bdia_sampler(net, _latents(), num_steps=n, base=base, return_pair=True)
    assert net.calls == expected(n)
    net.calls = 0
    bdia_invert(net, *pair, num_steps=n, base=base)
    assert net.calls == expected(n) - (2 if base == 'heun' else 1)  # every step but the first plain one
    net.calls = 0
    bdia_encode(net, pair[0], num_steps=n, base=base)
    assert net.calls == expected(n) - (2 if base == 'heun' else 1) + 1  # plus the one step that forms x_{N-1}


def test_callback_sees_every_step():
    seen = []
    out = bdia_sampler(TinyNonlinearNet(), _latents(), num_steps=5, callback=seen.append)
    assert [s['i'] for s in seen] == [0, 1, 2, 3, 4]
    assert set(seen[0]) == {'i', 't_cur', 't_next', 'x', 'denoised'}
    assert torch.equal(seen[-1]['x'], out) and seen[-1]['t_next'] == 0


@pytest.mark.parametrize('call, message', [
    (lambda net, z: bdia_sampler(net, z, gamma=1.5), r'gamma must lie in \[0, 1\]'),
    (lambda net, z: bdia_sampler(net, z, gamma=-0.1), r'gamma must lie in \[0, 1\]'),
    (lambda net, z: bdia_sampler(net, z, num_steps=4, gamma=[0.5, 2.0, 0.5]), r'gamma\[1\] must lie'),
    (lambda net, z: bdia_sampler(net, z, num_steps=4, gamma=[0.5]), 'needs num_steps - 1 = 3 values'),
    (lambda net, z: bdia_sampler(net, z, gamma='belm'), "or 'obelm'"),
    (lambda net, z: bdia_sampler(net, z, S_churn=40), 'S_churn must be 0 for BDIA'),
    (lambda net, z: bdia_sampler(net, z, base='rk4'), "base must be 'heun' or 'euler'"),
    (lambda net, z: bdia_sampler(net, z, num_steps=1), 'num_steps must be an integer >= 2'),
    (lambda net, z: bdia_sampler(net, z, start_pair=(z, z)), 'exactly one of latents and start_pair'),
    (lambda net, z: bdia_sampler(net, None), 'exactly one of latents and start_pair'),
    (lambda net, z: bdia_sampler(net, None, start_pair=(z, z[:1])), 'different shapes'),
    (lambda net, z: bdia_invert(net, z, z, gamma=0), 'gamma must be > 0 for inversion'),
    (lambda net, z: bdia_invert(net, z, z, num_steps=3, gamma=[1, 0]), 'gamma must be > 0 for inversion'),
    (lambda net, z: bdia_encode(net, z[:, :1]), r'images have shape \(2, 1, 8, 8\)'),
])
def test_bdia_input_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(TinyNonlinearNet(), _latents())
