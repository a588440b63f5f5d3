"""Real images through BDIA: noise-like encodings, exact round trips, edits across classes, strength, trajectories,
the exactness checks of round trips, and input errors."""

import math
import warnings

import pytest
import torch

from edm_bdia.analytic import GaussianDenoiser, sharp_mixture, toy_mixture_32x32_cond
from edm_bdia.sample import (BDIAPair, bdia_edit, bdia_encode, bdia_invert, bdia_sample, bdia_sampler, karras_sigmas,
                             strength_to_step)
from edm_bdia.samplers.bdia import ENCODING_SUBSTEPS, image_pair
from edm_bdia.speed import accelerate
from helpers.nets import CountingNet, NoisyNet, TinyNonlinearNet, tiny_edm_net


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _real_images(net, classes, seed=7):
    """Exact draws from the model's data distribution: real-looking images with known classes."""
    return net.sample_data(torch.tensor(classes), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope='module')
def toy():
    net = toy_mixture_32x32_cond()
    classes = [0, 3, 5, 8]
    return net, _real_images(net, classes), torch.eye(10, dtype=torch.float64)[classes]


@pytest.mark.parametrize('num_steps', [18, 35, 50])
def test_real_images_encode_to_noise_like_latents_and_decode_exactly(toy, num_steps):
    net, images, labels = toy
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "not noise-like" warning for the default
        start = bdia_encode(net, images, labels, num_steps=num_steps).pair
    latents = start.x / karras_sigmas(num_steps)[0]
    assert start.step == 0 and 0.9 < latents.std().item() < 1.2 and abs(latents.mean().item()) < 0.1
    decoded = bdia_sample(net, start, labels, num_steps=num_steps).images
    assert _rel_err(decoded, images) <= 1e-9


@pytest.mark.slow
@pytest.mark.parametrize('num_steps', [18, 50])
def test_real_images_of_a_sharp_mixture_encode_to_noise_like_latents(num_steps):
    net = sharp_mixture()
    classes = [1, 4, 6, 9]
    images, labels = _real_images(net, classes), torch.eye(10, dtype=torch.float64)[classes]
    start = bdia_encode(net, images, labels, num_steps=num_steps).pair
    assert 0.9 < (start.x / karras_sigmas(num_steps)[0]).std().item() < 1.2
    assert _rel_err(bdia_sample(net, start, labels, num_steps=num_steps).images, images) <= 1e-9


def test_encoded_latents_converge_to_the_exact_ode_latents_at_second_order():
    """On a Gaussian the ODE encoding x(t_0) / t_0 of an image is known in closed form. O-BELM converges at second
    order; the default (its gamma_i raised toward 0.5 where the data is resolved) is never farther from the exact
    latents."""
    gen = torch.Generator().manual_seed(0)
    net = GaussianDenoiser(torch.rand(3, 4, 4, generator=gen, dtype=torch.float64) - 0.5,
                           0.3 + 0.4 * torch.rand(3, 4, 4, generator=gen, dtype=torch.float64))
    images = net.mean + net.std * torch.randn(8, 3, 4, 4, generator=gen, dtype=torch.float64)

    def distance(n, gamma):
        t0 = karras_sigmas(n)[0]
        latents = bdia_encode(net, images, num_steps=n, gamma=gamma).pair.x / t0
        return ((latents - net.exact_latents(images, t0)) ** 2).mean().sqrt().item()

    steps = (16, 32, 64, 128)
    obelm = [distance(n, 'obelm') for n in steps]
    orders = [math.log2(a / b) for a, b in zip(obelm[:-1], obelm[1:])]
    assert all(abs(order - 2) < 0.25 for order in orders), (obelm, orders)
    default = [distance(n, 'obelm-adaptive') for n in steps]
    assert all(d <= o * (1 + 1e-9) for d, o in zip(default, obelm)), (default, obelm)


@pytest.mark.parametrize('data_std', [0.5, 0.05, 0.005, 0.001, 3e-4])
def test_the_encoding_start_is_the_ode_solution_at_every_data_scale(data_std):
    """x_{N-1} of real images against the closed-form ODE solution at t_{N-1} = 0.002 on Gaussians whose scale
    runs from coarser to finer than t_{N-1}: within 4 % of the distance it moves from the image (the single
    trapezoidal step it replaces was 68 % short at scale 0.001), for 1 + ENCODING_SUBSTEPS evaluations."""
    net = CountingNet(GaussianDenoiser(torch.zeros(1, 8, 8, dtype=torch.float64), data_std))
    images = data_std * torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    t = karras_sigmas(18)
    pair = image_pair(net, images, t, None)
    exact = net.net.exact_transport(images, 0, t[-2])
    assert pair.step == 17 and torch.equal(pair.x_next, images)
    assert ((pair.x - exact).std() / (exact - images).std()).item() < 0.04
    assert net.calls == 1 + ENCODING_SUBSTEPS


@pytest.mark.parametrize('data_std', [0.5, 0.05, 0.005, 0.001])
@pytest.mark.parametrize('num_steps', [35, 79])
def test_latents_of_any_data_scale_are_as_wide_as_the_exact_ode_latents(data_std, num_steps):
    """The default's encodings of exact draws have the std of the exact ODE latents within 5 % from 35 steps,
    whether the data is coarser or finer than sigma_min (the old trapezoidal start left them 36 % narrow at scale
    0.001 and 79 steps)."""
    net = GaussianDenoiser(torch.zeros(1, 16, 16, dtype=torch.float64), data_std)
    images = data_std * torch.randn(16, 1, 16, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    latents = bdia_encode(net, images, num_steps=num_steps).pair.x / 80
    assert abs(latents.std() / net.exact_latents(images, 80.).std() - 1) < 0.05


def test_a_small_gamma_encodes_exactly_but_not_to_noise_and_says_so(toy):
    """gamma = 0.5 at N = 50: the inverse recursion multiplies errors by up to 2^49, so the latents explode; the
    round trip stays exact, which is why the warning looks at the latents themselves."""
    net, images, labels = toy
    settings = dict(num_steps=50, gamma=0.5, base='euler')
    with pytest.warns(UserWarning, match=r"encoded latents have std .*not noise-like.*use gamma='obelm-adaptive'") \
            as record:
        start = bdia_encode(net, images, labels, **settings).pair
    assert len(record) == 1 and record[0].filename == __file__
    assert (start.x / karras_sigmas(50)[0]).std() > 100
    assert _rel_err(bdia_sample(net, start, labels, **settings).images, images) <= 1e-9


def test_too_few_obelm_steps_for_noise_like_latents_are_reported(toy):
    net, images, labels = toy
    with pytest.warns(UserWarning, match=r'not noise-like.*use more steps'):
        bdia_encode(net, images, labels, num_steps=6, gamma='obelm')


@pytest.mark.parametrize('strength', [1.0, 0.5])
def test_editing_with_the_source_labels_returns_the_images(toy, strength):
    net, images, labels = toy
    assert _rel_err(bdia_edit(net, images, labels, labels, strength=strength).images, images) <= 1e-9


@pytest.mark.parametrize('num_steps', [18, 50])
def test_full_edits_land_in_the_target_class_and_stay_in_range(toy, num_steps):
    net, images, labels = toy
    targets = [2, 9, 1, 4]
    edited = bdia_edit(net, images, labels, torch.eye(10, dtype=torch.float64)[targets], num_steps=num_steps).images
    posterior = net.class_posterior(edited)
    assert (posterior[torch.arange(4), targets] > 0.99).all()
    assert edited.abs().max() < 1.5  # the toy data lie in about [-1.2, 1.2]


def test_an_unstable_gamma_warns_and_breaks_the_edit(toy):
    """BDIA-Heun with gamma = 1 at N = 18, the old default: the warning is deserved."""
    net, images, labels = toy
    with pytest.warns(UserWarning, match='unstable'):
        edited = bdia_edit(net, images, labels, torch.eye(10, dtype=torch.float64)[[2, 9, 1, 4]], num_steps=18,
                           gamma=1.0, base='heun').images
    assert edited.abs().max() > 3


@pytest.mark.parametrize('strength, num_steps, step', [(1.0, 18, 0), (0.5, 18, 9), (0.3, 10, 7), (1 / 18, 18, 17),
                                                      (0.01, 18, 17), (0.99, 18, 0), (0.95, 18, 0), (0.9, 10, 1)])
def test_strength_to_step_walks_back_the_last_ceil_strength_n_steps(strength, num_steps, step):
    assert strength_to_step(strength, num_steps) == step


def test_strength_sets_the_start_level_and_how_far_the_edit_goes(toy):
    net, images, labels = toy
    targets = torch.eye(10, dtype=torch.float64)[[2, 9, 1, 4]]
    changes = []
    for strength in (0.25, 0.5, 1.0):
        edited, (_, inversion), (_, _, regeneration) = bdia_edit(net, images, labels, targets, strength=strength,
                                                                 keep_trajectory=True)
        k = strength_to_step(strength, 18)
        assert torch.equal(inversion.sigmas, karras_sigmas(18)[k:])
        assert torch.equal(regeneration.sigmas, karras_sigmas(18)[k:])
        assert torch.equal(inversion.states[-1], images) and torch.equal(regeneration.states[-1], edited)
        assert torch.equal(regeneration.states[:2], inversion.states[:2])  # the regeneration starts from the pair
        changes.append((edited - images).pow(2).mean().sqrt().item())
    assert changes[0] < changes[1] < changes[2], changes
    # strength <= 1/N inverts nothing and regenerates nothing
    assert torch.equal(bdia_edit(net, images, labels, targets, strength=1 / 18).images, images)


def test_network_evaluation_counts_of_encode_and_edit(toy):
    net, images, labels = toy
    counting = CountingNet(net)
    bdia_encode(counting, images, labels, num_steps=10)
    x_prev = 1 + ENCODING_SUBSTEPS
    assert counting.calls == x_prev + 1 + 9  # x_{N-1}, the repeat check, steps 9 .. 1 (one per step)
    counting.calls = 0
    bdia_edit(counting, images, labels, labels, num_steps=10, strength=0.5)
    assert counting.calls == x_prev + 1 + 4 + 4  # x_{N-1}, the repeat check, steps 9 .. 6 inverted, 6 .. 9 regenerated


def test_callback_sees_both_halves_of_an_edit(toy):
    net, images, labels = toy
    seen = []
    bdia_edit(net, images, labels, labels, num_steps=7, callback=seen.append)
    # x_{N-1} from the image, steps 6 .. 1 inverted, steps 1 .. 6 regenerated
    assert [s['i'] for s in seen] == [7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6]


# Exactness: what a round trip refuses, on a real edm_bdia network in the package's speed modes.

@pytest.mark.parametrize('call', [
    lambda net, x: bdia_invert(net, BDIAPair(17, x, x)),
    lambda net, x: bdia_encode(net, x),
    lambda net, x: bdia_edit(net, x, None, None),
    lambda net, x: bdia_sample(net, BDIAPair(0, x, x)),
])
def test_round_trips_refuse_a_16_bit_network(call):
    # emulated bf16 allowed: the refusal is about the number format, whatever kernels the CPU has
    net = accelerate(tiny_edm_net(), mode='bf16', allow_emulated_bf16=True)
    with pytest.raises(ValueError, match="net runs in speed mode 'bf16'.*use mode 'reference' or 'fast'"):
        call(net, torch.zeros(2, 3, 8, 8, dtype=torch.float64))


def test_round_trips_work_in_the_fast_speed_mode():
    net = accelerate(tiny_edm_net(), mode='fast')
    images = torch.tanh(torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random weights: these images are far from the "data"
        start = bdia_encode(net, images, num_steps=12).pair
        assert _rel_err(bdia_sample(net, start, num_steps=12).images, images) <= 1e-9


def test_sampling_alone_is_not_refused_in_16_bit_mode():
    net = accelerate(tiny_edm_net(), mode='bf16', allow_emulated_bf16=True)
    with torch.no_grad():
        bdia_sampler(net, torch.randn(1, 3, 8, 8), num_steps=7)


def test_a_network_that_does_not_repeat_its_output_is_refused_on_its_first_call():
    with pytest.raises(ValueError, match=r'net gave different outputs for the same input \(max relative difference '
                                         r'.*use_deterministic_algorithms'):
        bdia_encode(NoisyNet(), torch.zeros(2, 3, 8, 8))


class FakeCudaNet(TinyNonlinearNet):
    """Reports a CUDA network device (as an accelerated network does) while computing on the CPU."""
    net_device = torch.device('cuda')


@pytest.fixture
def cuda_precision_flags():
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])


@pytest.mark.filterwarnings('ignore:the encoded latents')  # zero images: far from this net's "data"
@pytest.mark.parametrize('matmul, cudnn', [(True, False), (False, True)])
def test_tf32_on_cuda_is_refused(cuda_precision_flags, matmul, cudnn):
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
    with pytest.raises(ValueError, match=r'TF32 is enabled on CUDA.*allow_tf32 = False'):
        bdia_encode(FakeCudaNet(), torch.zeros(2, 3, 8, 8))
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    bdia_encode(FakeCudaNet(), torch.zeros(2, 3, 8, 8), num_steps=3)  # TF32 off: accepted


def test_fp16_networks_on_cuda_and_reduced_matmul_precision_are_refused(cuda_precision_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    net = FakeCudaNet()
    net.use_fp16 = True
    with pytest.raises(ValueError, match=r'use_fp16=True.*net.use_fp16 = False'):
        bdia_invert(net, BDIAPair(17, torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)))
    torch.set_float32_matmul_precision('medium')
    with pytest.raises(ValueError, match=r"float32 matmul precision is 'medium'"):
        bdia_invert(TinyNonlinearNet(), BDIAPair(17, torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)))


@pytest.mark.parametrize('call, message', [
    (lambda net, x, c: bdia_edit(net, x, c, c, strength=0), r'strength must be a number in \(0, 1\]'),
    (lambda net, x, c: bdia_edit(net, x, c, c, strength=1.5), r'strength must be a number in \(0, 1\]'),
    (lambda net, x, c: bdia_edit(net, x, c, c, strength=float('nan')), r'strength must be a number in \(0, 1\]'),
    (lambda net, x, c: bdia_edit(net, x, c, c, strength=True), r'strength must be a number in \(0, 1\]'),
    (lambda net, x, c: bdia_encode(net, x, c, strength=-0.5), r'strength must be a number in \(0, 1\]'),
    (lambda net, x, c: bdia_edit(net, x, c, torch.eye(4)[[0, 1, 2]]), r'target_labels have shape \(3, 4\)'),
    (lambda net, x, c: bdia_edit(net, x, c[:, :3], c), r'class_labels have shape \(2, 3\)'),
    (lambda net, x, c: bdia_edit(net, x[:, :2], c, c), r'images have shape \(2, 2, 8, 8\)'),
    (lambda net, x, c: bdia_encode(net, x[0], c), 'images must be a 4-D tensor'),
    (lambda net, x, c: bdia_edit(net, x, c, c, base='rk4'), "base must be one of heun, euler, not 'rk4'"),
    (lambda net, x, c: bdia_edit(net, x, c, c, sigmas=[80.0, 1.0, 2.0, 0.0]), 'strictly decreasing'),
    (lambda net, x, c: bdia_edit(net, x, c, c, sigma_min=-1), 'sigma_min must be a finite number > 0'),
    (lambda net, x, c: bdia_edit(net, x, c, c, gamma=0), 'gamma must be > 0 for inversion'),
    (lambda net, x, c: bdia_edit(TinyNonlinearNet(), x, None, c), 'target_labels were given, but the network is '
                                                                   'unconditional'),
])
def test_edit_and_encode_input_errors(call, message):
    net = TinyNonlinearNet(label_dim=4)
    with pytest.raises(ValueError, match=message):
        call(net, torch.zeros(2, 3, 8, 8), torch.eye(4)[[0, 1]])


def test_arguments_after_the_labels_are_keyword_only(toy):
    net, images, labels = toy
    with pytest.raises(TypeError):
        bdia_edit(net, images, labels, labels, 0.5)
    with pytest.raises(TypeError):
        bdia_encode(net, images, labels, 18)


@pytest.mark.parametrize('settings', [dict(gamma=0), dict(strength=2), dict(sigmas=[1.0, 2.0, 0.0]), dict(base='x'),
                                      dict(gamma=[0.5] * 3)])
def test_bad_settings_fail_before_any_network_call(settings):
    net = CountingNet(TinyNonlinearNet())
    with pytest.raises(ValueError):
        bdia_edit(net, torch.zeros(2, 3, 8, 8), None, None, **settings)
    assert net.calls == 0
