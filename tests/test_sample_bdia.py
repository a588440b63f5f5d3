"""BDIA on EDM: base-sampler equivalence, O-BELM and the default rule, exact inversion, orders, stability at every data
scale, counts, errors."""

import warnings

import numpy as np
import pytest
import torch

from edm_bdia.analytic import GaussianDenoiser, sharp_mixture
from edm_bdia.sample import (DEFAULT_BASE, DEFAULT_GAMMA, BDIAPair, bdia_invert, bdia_sample, bdia_sampler,
                             edm_sampler, karras_sigmas)
from edm_bdia.samplers.bdia import Gammas
from edm_bdia.samplers.gammas import FLOOR, bdia_gammas, obelm_gammas
from edm_bdia.samplers.stability import GROWTH_LIMIT, largest_stable_gamma, parasitic_growth
from helpers.nets import CountingNet, TinyNonlinearNet, karras_restated


def _latents(batch=2, seed=0):
    return torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _rms(a, b):
    return ((a - b) ** 2).mean().sqrt().item()


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


def _gaussian(std_low=0.3, std_high=0.7):
    gen = torch.Generator().manual_seed(0)
    mean = torch.rand(3, 4, 4, generator=gen, dtype=torch.float64) - 0.5
    std = std_low + (std_high - std_low) * torch.rand(3, 4, 4, generator=gen, dtype=torch.float64)
    return GaussianDenoiser(mean, std)


@pytest.mark.parametrize('label_dim', [0, 4])
def test_gamma_zero_heun_is_edm_sampler_bitwise(label_dim):
    net = TinyNonlinearNet(label_dim=label_dim, dtype=torch.float32)
    labels = torch.eye(4)[[2, 0]] if label_dim else None
    z = _latents().float()
    assert torch.equal(bdia_sampler(net, z, labels, num_steps=8, gamma=0.0, base='heun'),
                       edm_sampler(net, z, labels, num_steps=8))


def test_gamma_zero_euler_is_the_euler_sampler_bitwise():
    net = TinyNonlinearNet()
    z = _latents()
    assert torch.equal(bdia_sampler(net, z, num_steps=8, gamma=0, base='euler'),
                       euler_restated(net, z, karras_sigmas(8)))


def test_obelm_gammas_and_sampler_match_the_belm_coefficients():
    # effective gamma_i = (h_i / h_{i+1})^2 for rho = 7, sigma in [0.002, 80], N = 18, steps 1 .. 17
    published = [0.562, 0.546, 0.529, 0.510, 0.490, 0.468, 0.445, 0.420, 0.392, 0.363, 0.330, 0.295, 0.257, 0.216,
                 0.173, 0.129, 0.131]
    assert bdia_gammas('obelm', karras_sigmas(18)).values == pytest.approx(published, abs=6e-4)
    net = TinyNonlinearNet()
    z = _latents()
    ours = bdia_sampler(net, z, num_steps=12, gamma='obelm', base='euler')
    assert _rel_err(ours, obelm_restated(net, z, karras_sigmas(12))) < 1e-12


def test_obelm_keeps_its_final_gamma_above_one_and_still_matches_belm():
    t = karras_restated(50)
    raw = [((t[i] - t[i + 1]) / (t[i - 1] - t[i])).item() ** 2 for i in range(1, 50)]
    assert raw[-1] > 2 and max(raw[:-1]) < 1  # on EDM's schedule only the final step to t = 0 is longer
    assert obelm_gammas(karras_sigmas(50)) == pytest.approx(raw, rel=1e-12)
    net = TinyNonlinearNet()
    z = _latents()
    ours = bdia_sampler(net, z, num_steps=50, gamma='obelm')
    assert _rel_err(ours, obelm_restated(net, z, karras_sigmas(50))) < 1e-12


def test_the_default_is_adaptive_obelm_on_the_euler_base():
    assert (DEFAULT_GAMMA, DEFAULT_BASE) == ('obelm-adaptive', 'euler')
    net = TinyNonlinearNet()
    z = _latents()
    assert torch.equal(bdia_sampler(net, z, num_steps=9),
                       bdia_sampler(net, z, num_steps=9, gamma='obelm-adaptive', base='euler'))


def test_adaptive_gamma_moves_from_obelm_to_the_floor_with_the_resolved_share():
    """gamma_i = g + (0.5 - g) (1 - min(1, mean d^2)) per sample, g O-BELM's: O-BELM's where the network resolves
    nothing (mean d^2 >= 1), the floor where it resolves everything (d = 0), linear in between; O-BELM's gamma_i
    above the floor (the final steps of long schedules) are kept."""
    t = karras_sigmas(18)
    gammas = bdia_gammas('obelm-adaptive', t)
    obelm = obelm_gammas(t)
    i = 15
    d = torch.stack([torch.full((3, 4, 4), v, dtype=torch.float64) for v in (2.0, 1.0, 0.5, 0.0)])
    d[2, 0] = 0.0  # mean of d^2 over the sample: (2/3) 0.25
    expected = [obelm[i - 1], obelm[i - 1], obelm[i - 1] + (FLOOR - obelm[i - 1]) * (1 - 0.25 * 2 / 3), FLOOR]
    assert gammas.at(i, d).flatten().tolist() == pytest.approx(expected, rel=1e-12)
    long = bdia_gammas('obelm-adaptive', karras_sigmas(50))
    assert long.at(49, torch.zeros(1, 3, 4, 4, dtype=torch.float64)) == obelm_gammas(karras_sigmas(50))[-1] > 1


def test_adaptive_gamma_is_per_sample_so_images_do_not_depend_on_the_batch():
    net = TinyNonlinearNet(label_dim=4)
    z = _latents(batch=4)
    labels = torch.eye(4)[[0, 1, 2, 3]]
    whole = bdia_sampler(net, z, labels, num_steps=12)
    assert all(torch.equal(bdia_sampler(net, z[k:k + 1], labels[k:k + 1], num_steps=12), whole[k:k + 1])
               for k in range(4))


@pytest.mark.parametrize('num_steps', [12, 18, 35])
def test_floored_obelm_raises_gamma_to_half_on_the_steps_below_the_data_scale(num_steps):
    t = karras_restated(num_steps)
    raw = [((t[i] - t[i + 1]) / (t[i - 1] - t[i])).item() ** 2 for i in range(1, num_steps)]
    expected = [max(0.5, g) if t[i] < 0.5 else g for i, g in zip(range(1, num_steps), raw)]
    assert expected != raw  # the floor acts at these step counts
    assert bdia_gammas('obelm-floor', karras_sigmas(num_steps)).values == pytest.approx(expected, rel=1e-12)


def test_floored_obelm_falls_back_to_obelm_where_the_floor_would_destabilize_sampling():
    t = karras_sigmas(10)
    candidate = [max(0.5, g) if t[i].item() < 0.5 else g for i, g in enumerate(obelm_gammas(t), start=1)]
    assert parasitic_growth(t, Gammas(candidate), 'euler') > GROWTH_LIMIT
    assert bdia_gammas('obelm-floor', t).values == obelm_gammas(t)


def test_per_step_gamma_sequence_equals_the_scalar():
    net = TinyNonlinearNet()
    z = _latents()
    assert torch.equal(bdia_sampler(net, z, num_steps=6, gamma=[0.05] * 5),
                       bdia_sampler(net, z, num_steps=6, gamma=0.05))
    assert not torch.equal(bdia_sampler(net, z, num_steps=6, gamma=[0.05, 0.05, 0.05, 0.05, 0.02]),
                           bdia_sampler(net, z, num_steps=6, gamma=0.05))


@pytest.mark.parametrize('base, gamma, num_steps', [
    ('euler', 'obelm-adaptive', 9), ('euler', 'obelm-adaptive', 35), ('euler', 'obelm-floor', 18),
    ('euler', 'obelm', 18), ('euler', 'obelm', 50), ('euler', 'obelm', 100),
    ('heun', 1.0, 18), ('heun', 0.9, 18), ('heun', 0.5, 18), ('euler', 0.9, 18), ('euler', 0.5, 18)])
def test_sample_invert_regenerate_round_trip(base, gamma, num_steps):
    net = TinyNonlinearNet(label_dim=4)
    labels = torch.eye(4)[[1, 3]]
    z = _latents()
    settings = dict(num_steps=num_steps, gamma=gamma, base=base)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the unstable settings warn; their round trip is exact all the same
        sampled = bdia_sample(net, z, labels, **settings)
        start = bdia_invert(net, sampled.pair, labels, **settings).pair
        regenerated = bdia_sample(net, start, labels, **settings)
    t0 = karras_sigmas(num_steps)[0]
    assert start.step == 0 and _rel_err(start.x / t0, z) <= 1e-9
    assert _rel_err(regenerated.images, sampled.images) <= 1e-9
    assert regenerated.pair.step == num_steps - 1 and torch.equal(regenerated.pair.x_next, regenerated.images)


def test_explicit_sigmas_sample_and_invert():
    net = TinyNonlinearNet(label_dim=4)
    labels = torch.eye(4)[[1, 3]]
    z = _latents()
    assert torch.equal(bdia_sampler(net, z, labels, sigmas=karras_sigmas(10)),
                       bdia_sampler(net, z, labels, num_steps=10))
    sigmas = [70.0, 20.0, 6.0, 2.0, 0.6, 0.2, 0.05, 0.01, 0.0]
    pair = bdia_sample(net, z, labels, sigmas=sigmas).pair
    assert _rel_err(bdia_invert(net, pair, labels, sigmas=sigmas).pair.x / 70.0, z) <= 1e-9


def _observed_orders(sampler, steps=(64, 128, 256)):
    net = _gaussian()
    z = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = [_rms(sampler(net, z, n), net.exact_solution(z, karras_sigmas(n)[0])) for n in steps]
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


def test_obelm_is_second_order_and_bdia_on_the_heun_base_is_first_order():
    """On the exact Gaussian solution: O-BELM (and the default) converges like N^-2; BDIA on the Heun base like N^-1 for
    every gamma > 0 (its backward increment is an Euler step), and so does 'obelm' on the Heun base."""
    for gamma in ('obelm', 'obelm-adaptive', 'obelm-floor'):
        orders = _observed_orders(lambda net, z, n: bdia_sampler(net, z, num_steps=n, gamma=gamma))
        assert np.all(np.abs(orders - 2) < 0.15), (gamma, orders)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for gamma in (0.2, 0.5, 'obelm'):
            orders = _observed_orders(lambda net, z, n: bdia_sampler(net, z, num_steps=n, gamma=gamma, base='heun'))
            assert np.all(orders < 1.35), (gamma, orders)


@pytest.mark.filterwarnings('ignore:.*unstable')  # (0.9, heun, 18) and (0.5, euler, 10) are unstable on purpose
def test_parasitic_growth_is_what_the_sampler_does_to_a_perturbed_state():
    """The linear analysis against the sampler itself: on data ~ N(0, 0.5^2) sampling is linear, so restarting from
    a pair with a perturbed second state measures dx_{N-1} / dx_k directly; over the same for gamma = 0 (the base
    solver) its maximum is `parasitic_growth`."""
    net = GaussianDenoiser(torch.zeros(1, 1, 1, dtype=torch.float64), 0.5)

    def sensitivities(gamma, base, n):
        states = bdia_sample(net, torch.ones(1, 1, 1, 1, dtype=torch.float64), num_steps=n, gamma=gamma, base=base,
                             keep_trajectory=True).trajectory.states
        out = []
        for k in range(1, n):
            bumped = bdia_sample(net, BDIAPair(k - 1, states[k - 1], states[k] + 1e-3), num_steps=n, gamma=gamma,
                                 base=base, keep_trajectory=True).trajectory.states
            out.append(((bumped[-2] - states[-2]) / 1e-3).item())  # x_{N-1}
        return np.array(out)

    for gamma, base, n in ((0.9, 'heun', 18), (0.5, 'euler', 10), ('obelm', 'euler', 18), ('obelm', 'euler', 60)):
        t = karras_sigmas(n)
        measured = np.abs(sensitivities(gamma, base, n)) / sensitivities(0, base, n)
        predicted = parasitic_growth(t, bdia_gammas(gamma, t), base, data_std=0.5, first=1)
        assert measured.max() == pytest.approx(predicted, rel=1e-6)


# Calibration on a stiff testbed: 100 near-point masses (per-pixel std 0.01) in 3x32x32, against the exact ODE
# solution at t = 0. (EDM's schedule ends with an Euler jump from 0.002 to 0 that is off by 1.9e-4 here; Heun's
# error crosses zero near 99 evaluations, where no ratio to it means anything, so the comparison stops at 69.)
SHARP_STEPS = [10, 18, 35]


@pytest.fixture(scope='module')
def sharp():
    net = sharp_mixture()
    z = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.eye(10, dtype=torch.float64)[[0, 3, 5, 8]]
    return net, z, labels, edm_sampler(net, z, labels, num_steps=512, sigma_min=1e-5)  # the ODE to t = 0, ~1e-6


@pytest.mark.slow
def test_the_default_stays_within_2x_of_heun_at_equal_nfe_on_a_sharp_mixture(sharp):
    net, z, labels, reference = sharp
    for heun_steps in SHARP_STEPS:
        nfe = 2 * heun_steps - 1
        heun = _rms(edm_sampler(net, z, labels, num_steps=heun_steps), reference)
        default = _rms(bdia_sampler(net, z, labels, num_steps=nfe), reference)  # O-BELM: one evaluation per step
        assert default <= 2 * heun, (nfe, default, heun)


@pytest.mark.slow
def test_warned_settings_blow_up_and_the_suggested_gamma_does_not(sharp):
    net, z, labels, reference = sharp
    heun = _rms(edm_sampler(net, z, labels, num_steps=18), reference)
    for gamma in (0.9, 1.0):
        with pytest.warns(UserWarning, match=rf"gamma={gamma} on base='heun' with these 18 steps is unstable"):
            error = _rms(bdia_sampler(net, z, labels, num_steps=18, gamma=gamma, base='heun'), reference)
        assert error > 100 * heun
    # the stability limit the warning suggests: no blow-up, though first order (several times Heun's error)
    stable = largest_stable_gamma(karras_sigmas(18), 'heun')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert _rms(bdia_sampler(net, z, labels, num_steps=18, gamma=stable, base='heun'), reference) < 10 * heun


@pytest.mark.parametrize('num_steps', [7, 8, 9, 10, 11, 12, 18, 35, 50, 100, 200, 512])
def test_the_default_is_stable_at_the_data_scale_from_seven_steps(num_steps):
    t = karras_sigmas(num_steps)
    assert parasitic_growth(t, bdia_gammas(DEFAULT_GAMMA, t), 'euler') <= GROWTH_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        bdia_sampler(GaussianDenoiser(torch.zeros(1, 1, 1), 0.5), torch.ones(1, 1, 1, 1), num_steps=num_steps)


@pytest.mark.parametrize('num_steps', [4, 5, 6])
def test_the_default_asks_for_more_steps_below_seven(num_steps):
    with pytest.warns(UserWarning, match='use more steps$'):
        bdia_sampler(GaussianDenoiser(torch.zeros(1, 1, 1), 0.5), torch.ones(1, 1, 1, 1), num_steps=num_steps)


SCALES = np.logspace(-4, 1, 16)  # data std 1e-4 .. 10


def _worst_growth(gamma, num_steps):
    t = karras_sigmas(num_steps)
    return max(parasitic_growth(t, bdia_gammas(gamma, t), 'euler', data_std=s) for s in SCALES)


@pytest.mark.parametrize('num_steps', [7, 9, 12, 18, 35, 79])
def test_the_default_is_about_as_stable_as_obelm_at_every_data_scale(num_steps):
    """Over data scales 1e-4 .. 10 the default's worst parasitic growth stays within 25 % of O-BELM's worst (which
    is ~10 at the finest scales, where the base solver's own sensitivity is tiny); the old default, whose floor
    assumed data at scale 0.5, grows ~1000-fold on fine data below 36 steps."""
    assert _worst_growth(DEFAULT_GAMMA, num_steps) <= 1.25 * _worst_growth('obelm', num_steps)
    if num_steps in (9, 12, 18, 35):
        assert _worst_growth('obelm-floor', num_steps) > 3 * _worst_growth('obelm', num_steps)


@pytest.mark.parametrize('gamma, base, num_steps, message', [
    (0.9, 'heun', 18, "gamma=0.9 on base='heun' with these 18 steps is unstable: .* or gamma <= 0.6"),
    (0.7, 'heun', 18, 'grows x'),
    (1.0, 'heun', 100, 'unstable'),
    (1.0, 'euler', 200, 'unstable'),
    (0.9, 'euler', 35, 'unstable'),
    (0.5, 'euler', 6, 'unstable'),
    ([0.9] * 17, 'heun', 18, 'this gamma sequence'),
    ('obelm', 'heun', 18, "first order at 2 network evaluations per step .* use base='euler'"),
    ('obelm', 'euler', 5, "gamma='obelm' on base='euler' with these 5 steps is unstable: .*; use more steps$"),
    ('obelm-floor', 'euler', 5, 'use more steps$'),
    ('obelm-adaptive', 'euler', 6, 'use more steps$'),
    (0.9, 'euler', 18, "use gamma='obelm-adaptive' with base='euler', or gamma <= 0.5"),
])
def test_unstable_or_mismatched_settings_warn_once_in_one_line(gamma, base, num_steps, message):
    with pytest.warns(UserWarning, match=message) as record:
        bdia_sampler(TinyNonlinearNet(), _latents(), num_steps=num_steps, gamma=gamma, base=base)
    assert len(record) == 1 and '\n' not in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller


@pytest.mark.parametrize('gamma, base, num_steps', [(0.5, 'heun', 18), (0.7, 'heun', 35), (0.9, 'heun', 100),
                                                    (0.3, 'euler', 10), (0, 'heun', 18)])
def test_stable_settings_do_not_warn(gamma, base, num_steps):
    t = karras_sigmas(num_steps)
    assert parasitic_growth(t, bdia_gammas(gamma, t), base) <= GROWTH_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        bdia_sampler(TinyNonlinearNet(), _latents(), num_steps=num_steps, gamma=gamma, base=base)


@pytest.mark.parametrize('base, per_step', [('heun', 2), ('euler', 1)])
def test_network_evaluation_counts(base, per_step):
    n = 7
    net = CountingNet(TinyNonlinearNet())
    settings = dict(num_steps=n, gamma=0.2, base=base)
    final = bdia_sample(net, _latents(), **settings).pair
    assert net.calls == per_step * n - (per_step - 1)  # the last step to t = 0 is Euler
    net.calls = 0
    start = bdia_invert(net, final, **settings).pair
    # steps N-1 .. 1 (the first plain step is not inverted), plus one repeat of the first call
    assert net.calls == per_step * (n - 1) - (per_step - 1) + 1
    net.calls = 0
    bdia_sample(net, BDIAPair(3, start.x, start.x_next), **settings)  # steps 4 .. N-1
    assert net.calls == per_step * (n - 4) - (per_step - 1)


def test_callback_and_trajectory_see_every_step():
    seen = []
    out, _, traj = bdia_sample(TinyNonlinearNet(), _latents(), num_steps=7, callback=seen.append, keep_trajectory=True)
    assert [s['i'] for s in seen] == [0, 1, 2, 3, 4, 5, 6]
    assert set(seen[0]) == {'i', 't_cur', 't_next', 'x', 'denoised'}
    assert torch.equal(seen[-1]['x'], out) and seen[-1]['t_next'] == 0
    assert torch.equal(traj.sigmas, karras_sigmas(7)) and traj.states.shape == (8, 2, 3, 8, 8)
    assert torch.equal(traj.states[0], _latents() * karras_sigmas(7)[0])
    assert all(torch.equal(traj.states[s['i'] + 1], s['x']) for s in seen)


def test_inversion_trajectory_retraces_the_sampling_trajectory():
    net = TinyNonlinearNet()
    _, final, forward = bdia_sample(net, _latents(), num_steps=7, keep_trajectory=True)
    start, backward = bdia_invert(net, final, num_steps=7, keep_trajectory=True)
    assert torch.equal(backward.sigmas, forward.sigmas)
    scale = forward.states.flatten(1).abs().max(1).values[:, None, None, None, None]  # per state
    assert ((backward.states - forward.states).abs() <= 1e-10 * scale).all()
    assert torch.equal(backward.states[0], start.x) and torch.equal(backward.states[1], start.x_next)


def test_partial_inversion_stops_at_the_strength_step_and_regenerates_from_it():
    net = TinyNonlinearNet()
    sampled = bdia_sample(net, _latents(), num_steps=10)
    start, traj = bdia_invert(net, sampled.pair, num_steps=10, strength=0.3, keep_trajectory=True)
    assert start.step == 7 and torch.equal(traj.sigmas, karras_sigmas(10)[7:])  # k = 10 - ceil(0.3 * 10) = 7
    assert _rel_err(bdia_sample(net, start, num_steps=10).images, sampled.images) <= 1e-12


@pytest.mark.parametrize('call, message', [
    (lambda net, z: bdia_sampler(net, z, gamma=1.5), r'gamma must lie in \[0, 1\]'),
    (lambda net, z: bdia_sampler(net, z, gamma=-0.1), r'gamma must lie in \[0, 1\]'),
    (lambda net, z: bdia_sampler(net, z, num_steps=4, gamma=[0.5, 2.0, 0.5]), r'gamma\[1\] must lie'),
    (lambda net, z: bdia_sampler(net, z, num_steps=4, gamma=[0.5]), 'needs num_steps - 1 = 3 values'),
    (lambda net, z: bdia_sampler(net, z, gamma='belm'), "'obelm-adaptive', 'obelm', 'obelm-floor', not 'belm'"),
    (lambda net, z: bdia_sampler(net, z, gamma=torch.tensor(0.5)), 'gamma must be a number in'),
    (lambda net, z: bdia_sampler(net, z, base='rk4'), "base must be one of heun, euler, not 'rk4'"),
    (lambda net, z: bdia_sampler(net, z, num_steps=1), 'num_steps must be an integer >= 2'),
    (lambda net, z: bdia_sampler(net, z, sigma_min=1, sigma_max=0.5), r'sigma_min \(1\) must be below sigma_max'),
    (lambda net, z: bdia_sampler(net, z, rho=float('nan')), 'rho must be a finite number > 0'),
    (lambda net, z: bdia_sampler(net, z, sigmas=[80.0, 1.0]), 'at least 3 levels'),
    (lambda net, z: bdia_sampler(net, z, sigmas=[80.0, 1.0, 0.0], num_steps=2), 'sigmas replaces num_steps'),
    (lambda net, z: bdia_sampler(net, BDIAPair(0, z, z)), 'latents must be a tensor .*bdia_sample regenerates'),
    (lambda net, z: bdia_sampler(net, None), 'latents must be a tensor'),
    (lambda net, z: bdia_sample(net, (z, z)), r'start must be a BDIAPair\(step, x, x_next\)'),
    (lambda net, z: bdia_sample(net, BDIAPair(0, z, z[:1])), 'different shapes'),
    (lambda net, z: bdia_sample(net, BDIAPair(5, z, z), num_steps=5), r'start has step 5; .*integer in \[0, 4\]'),
    (lambda net, z: bdia_sample(net, BDIAPair(1.0, z, z), num_steps=5), r'start has step 1.0'),
    (lambda net, z: bdia_sampler(net, z, torch.eye(4)[[0, 1]]), 'unconditional'),
    (lambda net, z: bdia_invert(net, BDIAPair(17, z, z), gamma=0), 'gamma must be > 0 for inversion'),
    (lambda net, z: bdia_invert(net, BDIAPair(2, z, z), num_steps=3, gamma=[1, 0]), 'gamma must be > 0 for inversion'),
    (lambda net, z: bdia_invert(net, BDIAPair(17, z, z[:, :1])), r'pair have shape \(2, 1, 8, 8\)'),
    (lambda net, z: bdia_invert(net, BDIAPair(3, z, z)), r'pair must be the final pair of a run \(step 17'),
    (lambda net, z: bdia_invert(net, (z, z)), r'pair must be a BDIAPair'),
    (lambda net, z: bdia_invert(net, BDIAPair(17, z, z), strength=0), r'strength must be a number in \(0, 1\]'),
])
def test_bdia_input_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(TinyNonlinearNet(), _latents())


def test_arguments_after_class_labels_are_keyword_only():
    with pytest.raises(TypeError):
        bdia_sampler(TinyNonlinearNet(), _latents(), None, 18)
    with pytest.raises(TypeError):
        bdia_invert(TinyNonlinearNet(), BDIAPair(17, _latents(), _latents()), None, 18)


def test_zero_gamma_steps_outside_a_partial_inversion_are_allowed():
    net = TinyNonlinearNet()
    settings = dict(num_steps=5, gamma=[0, 0.05, 0.05, 0.05])
    sampled = bdia_sample(net, _latents(), **settings)
    start = bdia_invert(net, sampled.pair, strength=0.6, **settings).pair  # inverts steps 4 and 3 only
    assert _rel_err(bdia_sample(net, start, **settings).images, sampled.images) <= 1e-12


@pytest.mark.parametrize('other', [dict(num_steps=12), dict(num_steps=10, gamma='obelm'),
                                   dict(num_steps=10, base='heun', gamma=0.3),
                                   dict(sigmas=karras_sigmas(10, sigma_max=40))])
def test_a_pair_refuses_a_run_with_other_settings_and_a_hand_made_pair_cannot_be_checked(other):
    """The pair of a run carries an identity of its settings (noise levels, gamma, base, guidance): inverting or
    regenerating it with other settings is refused instead of returning wrong latents that look like noise."""
    net = TinyNonlinearNet()
    sampled = bdia_sample(net, _latents(), num_steps=10)
    final_step = (len(other['sigmas']) - 1 if 'sigmas' in other else other['num_steps']) - 1
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ValueError, match='pair was made by a run with other settings'):
            bdia_invert(net, sampled.pair._replace(step=final_step), **other)
        start = bdia_invert(net, sampled.pair, num_steps=10).pair
        with pytest.raises(ValueError, match='start was made by a run with other settings'):
            bdia_sample(net, start, **other)
    hand_made = BDIAPair(9, sampled.pair.x, sampled.pair.x_next)  # no run: nothing to check it against
    assert bdia_invert(net, hand_made, num_steps=10).pair.run == start.run
