"""k-diffusion interop: our networks in k-diffusion's samplers and k-diffusion-style denoisers in our samplers.

Tests that run k-diffusion's own code skip when it is not installed; install it for them with
`pip install --no-deps k-diffusion==0.1.1.post1` and `pip install -e .[kdiffusion]`.
"""

import math
import subprocess
import sys

import pytest
import torch

from edm_bdia.interop import (SAMPLER_NAMES, KDiffusionDenoiser, NVlabsDenoiser, k_diffusion_sampler,
                              load_k_diffusion_sampling)
from edm_bdia.interop import k_diffusion_loader
from edm_bdia.networks import EDMPrecond, iDDPMPrecond
from edm_bdia.sample import ablation_sampler, bdia_invert, bdia_sample, bdia_sampler, edm_sampler, karras_sigmas
from helpers.nets import CountingNet, TinyNonlinearNet

from edm_bdia.analytic import GaussianDenoiser

TINY_SONG = dict(model_type='SongUNet', model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])
TINY_ADM = dict(model_type='DhariwalUNet', model_channels=32, channel_mult=[2], num_blocks=1, attn_resolutions=[])


@pytest.fixture(scope='module')
def K():
    """k-diffusion's sampling module, loaded alone; the test skips when k-diffusion is not installed."""
    try:
        return load_k_diffusion_sampling()
    except ImportError as error:
        pytest.skip(str(error))


def tiny_precond(precond, label_dim=0, seed=0, **model):
    """A real NVlabs-architecture network (float32 inside), all weights drawn at scale 0.2 (NVlabs zero-initialises
    output layers, which would make the UNet output zero)."""
    net = precond(img_resolution=8, img_channels=3, label_dim=label_dim, **model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    return net.eval().requires_grad_(False)


NETWORKS = {
    'edm-uncond': lambda: tiny_precond(EDMPrecond, **TINY_SONG),
    'edm-cond': lambda: tiny_precond(EDMPrecond, label_dim=4, **TINY_SONG),
    'iddpm': lambda: tiny_precond(iDDPMPrecond, **TINY_ADM),  # round_sigma quantizes the schedule
}


def inputs(net, batch=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(batch, net.img_channels, net.img_resolution, net.img_resolution, generator=gen)
    labels = torch.eye(net.label_dim)[torch.randint(net.label_dim, (batch,), generator=gen)] if net.label_dim else None
    return latents, labels


# --- our networks in k-diffusion ---------------------------------------------------------------------------------

@pytest.mark.parametrize('name', list(NETWORKS))
def test_k_diffusion_heun_on_our_network_equals_edm_sampler(K, name):
    """sample_heun with EDM's float64 schedule runs EDM Algorithm 2 without churn: the same images to the bit."""
    net = NETWORKS[name]()
    latents, labels = inputs(net)
    sigmas = karras_sigmas(7, net=net)
    extra_args = {} if labels is None else {'class_labels': labels}
    theirs = K.sample_heun(KDiffusionDenoiser(net), latents.to(torch.float64) * sigmas[0], sigmas,
                           extra_args=extra_args, disable=True)
    ours = edm_sampler(net, latents, class_labels=labels, num_steps=7)
    assert theirs.dtype == torch.float64
    assert torch.equal(theirs, ours)


def test_k_diffusion_heun_with_churn_equals_edm_sampler(K):
    """Both draw torch.randn_like(x) once per step; t_hat = t (1 + gamma) vs t + gamma t differ in the last bit."""
    net = NETWORKS['edm-cond']()
    latents, labels = inputs(net)
    churn = dict(S_churn=20, S_min=0.1, S_max=20)
    torch.manual_seed(5)
    ours = edm_sampler(net, latents, class_labels=labels, num_steps=7, **churn)
    torch.manual_seed(5)
    heun = k_diffusion_sampler('heun', s_churn=20, s_tmin=0.1, s_tmax=20)
    theirs = heun(net, latents, class_labels=labels, num_steps=7)
    assert (theirs - ours).abs().max() < 1e-12


def test_k_diffusion_euler_equals_our_euler(K):
    net = TinyNonlinearNet(label_dim=4, dtype=torch.float32)
    latents, labels = inputs(net)
    ours = bdia_sampler(net, latents, class_labels=labels, num_steps=9, gamma=0, base='euler')
    assert torch.equal(k_diffusion_sampler('euler')(net, latents, class_labels=labels, num_steps=9), ours)


def test_karras_schedule_of_k_diffusion_is_ours_in_float32(K):
    """get_sigmas_karras: float32, no clamping to the network's range, no round_sigma; same values otherwise."""
    ours = karras_sigmas(18)
    theirs = K.get_sigmas_karras(18, 0.002, 80.0, rho=7.0)
    assert theirs.dtype == torch.float32
    assert torch.allclose(theirs.double(), ours, rtol=1e-6, atol=0)
    iddpm = NETWORKS['iddpm']()
    rounded = KDiffusionDenoiser(iddpm).karras_sigmas(18)
    assert torch.equal(rounded, karras_sigmas(18, net=iddpm))
    assert torch.equal(iddpm.round_sigma(rounded), rounded)  # on iDDPM's grid of levels
    assert not torch.allclose(rounded, ours, rtol=1e-3)


def test_dpmpp_2m_converges_at_second_order_to_the_exact_gaussian_solution(K):
    """DPM-Solver++(2M) through the adapter on N(mu, diag(s^2)) data, whose PF-ODE solution is closed-form."""
    gen = torch.Generator().manual_seed(0)
    mean = torch.rand(3, 4, 4, generator=gen, dtype=torch.float64) * 2 - 1
    std = torch.rand(3, 4, 4, generator=gen, dtype=torch.float64) * 0.6 + 0.1
    net = GaussianDenoiser(mean, std)
    latents = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    sampler = k_diffusion_sampler('dpmpp_2m')
    errors = []
    for num_steps in (32, 64, 128, 256):
        sigmas = karras_sigmas(num_steps)[:-1]  # stop at sigma_min: the final denoising step is only first order
        exact = net.exact_solution(latents, sigmas[0].item(), sigma=sigmas[-1].item())
        errors.append((sampler(net, latents, sigmas=sigmas) - exact).abs().max().item())
    orders = [math.log2(coarse / fine) for coarse, fine in zip(errors, errors[1:])]
    assert all(1.9 < order < 2.3 for order in orders), (errors, orders)
    assert errors[-1] < 1e-3


@pytest.mark.parametrize('name', SAMPLER_NAMES)
def test_named_sampler_counts_its_network_evaluations(K, name):
    net = CountingNet(TinyNonlinearNet())
    latents, _ = inputs(net)
    sampler = k_diffusion_sampler(name)
    images = sampler(net, latents, num_steps=6)
    assert net.calls == sampler.nfe(6)
    assert images.dtype == torch.float64 and images.shape == latents.shape
    assert repr(sampler) == f'k_diffusion_sampler({name!r})'


def test_named_sampler_refuses_unknown_names_and_options(K):
    with pytest.raises(ValueError, match='must be one of'):
        k_diffusion_sampler('dpmpp_9m')
    with pytest.raises(ValueError, match='takes no option s_churn'):
        k_diffusion_sampler('dpmpp_2m', s_churn=1)
    net = TinyNonlinearNet()
    latents, _ = inputs(net)
    with pytest.raises(ValueError, match='strictly decreasing'):
        k_diffusion_sampler('euler')(net, latents, sigmas=[1.0, 2.0, 0.0])


def test_denoiser_passes_distinct_per_sample_sigmas():
    """Per-sample levels stay per sample: compare with the Gaussian posterior mean mu + s^2/(s^2 + sigma^2)(x - mu)."""
    mean, std = torch.full((1, 2, 2), 0.3, dtype=torch.float64), torch.full((1, 2, 2), 0.5, dtype=torch.float64)
    x = torch.randn(3, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    denoised = KDiffusionDenoiser(GaussianDenoiser(mean, std))(x, sigma)
    expected = 0.3 + 0.25 / (0.25 + sigma.reshape(-1, 1, 1, 1) ** 2) * (x - 0.3)
    assert torch.allclose(denoised, expected, rtol=1e-14, atol=0)


def test_denoiser_takes_class_indices_and_returns_the_input_dtype():
    net = NETWORKS['edm-cond']()
    latents, _ = inputs(net)
    model = KDiffusionDenoiser(net)
    sigma = torch.full([3], 2.0, dtype=torch.float64)
    x = latents.to(torch.float64)
    by_index = model(x, sigma, class_labels=torch.tensor([0, 3, 1]))
    assert by_index.dtype == torch.float64
    assert torch.equal(by_index, model(x, sigma, class_labels=torch.eye(4)[[0, 3, 1]]))
    assert torch.equal(by_index, net(x, sigma[0], torch.eye(4)[[0, 3, 1]]).double())
    with pytest.raises(ValueError, match='one value or one per sample'):
        model(x, sigma[:2])


def test_python_number_sigmas_stay_float64():
    """0.1 is not a float32 number: a Python sigma must reach a float64 model unrounded, through either adapter."""
    net = TinyNonlinearNet(dtype=torch.float64)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = net(x, torch.tensor(0.1, dtype=torch.float64))
    assert torch.equal(KDiffusionDenoiser(net)(x, 0.1), expected)
    assert torch.equal(NVlabsDenoiser(k_style(net))(x, 0.1), expected)
    assert not torch.equal(net(x, torch.tensor(0.1)), expected)  # what float32 rounding would give


# --- k-diffusion-style denoisers in our samplers -----------------------------------------------------------------

def k_style(net, labels_keyword='class_labels', as_indices=False):
    """A denoiser with k-diffusion's calling convention written by hand: sigma must be [B], labels by keyword."""
    def model(x, sigma, **kwargs):
        assert sigma.shape == (x.shape[0],) and sigma.dtype == x.dtype
        labels = kwargs.pop(labels_keyword, None)
        assert not kwargs
        if labels is not None and as_indices:
            labels = torch.nn.functional.one_hot(labels, net.label_dim).to(torch.float32)
        return net(x, sigma, labels)
    return model


SAMPLERS = {
    'edm': lambda net, z, c: edm_sampler(net, z, class_labels=c, num_steps=6),
    'bdia-heun': lambda net, z, c: bdia_sampler(net, z, class_labels=c, num_steps=6, gamma=0.15, base='heun'),
    'bdia-euler-obelm': lambda net, z, c: bdia_sampler(net, z, class_labels=c, num_steps=6, gamma='obelm',
                                                                base='euler'),
    'ablation-vp': lambda net, z, c: ablation_sampler(net, z, class_labels=c, num_steps=6, discretization='vp',
                                                      schedule='vp', scaling='vp'),
}


@pytest.mark.parametrize('sampler', list(SAMPLERS))
@pytest.mark.parametrize('label_dim', [0, 4])
def test_our_samplers_on_a_k_diffusion_style_model_equal_the_original_net(sampler, label_dim):
    net = TinyNonlinearNet(label_dim=label_dim, dtype=torch.float32)
    latents, labels = inputs(net)
    adapted = NVlabsDenoiser(k_style(net), img_channels=3, img_resolution=8, label_dim=label_dim)
    assert torch.equal(SAMPLERS[sampler](adapted, latents, labels), SAMPLERS[sampler](net, latents, labels))


def test_class_indices_under_another_keyword_and_extra_args():
    net = TinyNonlinearNet(label_dim=4)
    latents, labels = inputs(net)

    def model(x, sigma, class_cond, scale):
        return k_style(net, 'class_cond', as_indices=True)(x, sigma, class_cond=class_cond) * scale

    adapted = NVlabsDenoiser(model, labels_keyword='class_cond', labels_as_indices=True, extra_args={'scale': 1.0})
    assert torch.equal(edm_sampler(adapted, latents, class_labels=labels, num_steps=5),
                       edm_sampler(net, latents, class_labels=labels, num_steps=5))
    one_label = labels[:1]  # one row applies to the whole batch, as with NVlabs networks
    assert torch.equal(edm_sampler(adapted, latents, class_labels=one_label, num_steps=5),
                       edm_sampler(net, latents, class_labels=one_label.expand(3, -1), num_steps=5))


@pytest.mark.parametrize('name', list(NETWORKS))
def test_round_trip_through_both_adapters_is_the_network(name):
    """NVlabsDenoiser(KDiffusionDenoiser(net)) infers shape, range and round_sigma, and calls the net as before."""
    net = NETWORKS[name]()
    latents, labels = inputs(net)
    both = NVlabsDenoiser(KDiffusionDenoiser(net))
    assert (both.img_channels, both.img_resolution, both.label_dim) == (3, 8, net.label_dim)
    assert (both.sigma_min, both.sigma_max) == (float(net.sigma_min), float(net.sigma_max))
    assert torch.equal(edm_sampler(both, latents, class_labels=labels, num_steps=5),
                       edm_sampler(net, latents, class_labels=labels, num_steps=5))
    pair = bdia_sample(net, latents, class_labels=labels, num_steps=8).pair
    assert torch.equal(bdia_invert(both, pair, class_labels=labels, num_steps=8).pair.x,
                       bdia_invert(net, pair, class_labels=labels, num_steps=8).pair.x)


def test_explicit_range_and_rounding_shape_the_schedule():
    """A bare function knows no sigma range or rounding: given iDDPM's, our samplers use iDDPM's schedule."""
    net = NETWORKS['iddpm']()
    latents, _ = inputs(net)
    bare = k_style(KDiffusionDenoiser(net))  # a plain function: no attributes to infer from
    told = NVlabsDenoiser(bare, sigma_min=net.sigma_min, sigma_max=net.sigma_max, round_sigma=net.round_sigma)
    untold = NVlabsDenoiser(bare)
    assert torch.equal(edm_sampler(told, latents, num_steps=5), edm_sampler(net, latents, num_steps=5))
    assert not torch.allclose(edm_sampler(untold, latents, num_steps=5), edm_sampler(net, latents, num_steps=5))
    with pytest.raises(ValueError, match='sigma_min < sigma_max'):
        NVlabsDenoiser(bare, sigma_min=5, sigma_max=1)
    with pytest.raises(ValueError, match="must not hold 'class_labels'"):
        NVlabsDenoiser(bare, extra_args={'class_labels': None})


# --- loading -----------------------------------------------------------------------------------------------------

def test_importing_interop_does_not_load_k_diffusion():
    code = ('import sys, edm_bdia.interop; print(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("k_diffusion", "_edm_bdia_k_diffusion", "torchsde", "torchdiffeq")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'


def test_missing_k_diffusion_is_one_clear_import_error(monkeypatch):
    for name in list(sys.modules):
        if name.startswith(k_diffusion_loader.PRIVATE_PACKAGE):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'k_diffusion', None)  # find_spec then reports "not installed"
    with pytest.raises(ImportError, match='pip install --no-deps k-diffusion==0.1.1.post1'):
        load_k_diffusion_sampling()
    with pytest.raises(ImportError, match='k-diffusion is not installed'):
        k_diffusion_sampler('heun')


def test_missing_sampler_requirement_is_one_clear_import_error(K, monkeypatch):
    for name in list(sys.modules):
        if name.startswith(k_diffusion_loader.PRIVATE_PACKAGE):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'torchsde', None)
    with pytest.raises(ImportError, match="sampling.py needs 'torchsde'.*pip install"):
        load_k_diffusion_sampling()
    assert not [name for name in sys.modules if name.startswith(k_diffusion_loader.PRIVATE_PACKAGE)]


def test_loaded_module_is_k_diffusions_file_without_its_package(K):
    assert K.__file__.endswith('k_diffusion/sampling.py')
    assert 'k_diffusion' not in sys.modules
    x = torch.zeros(2, 3)
    assert K.utils.append_dims(torch.ones(2), x.ndim + 2).shape == (2, 1, 1, 1)
