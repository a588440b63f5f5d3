"""Guidance (EDM2's classifier-free guidance and autoguidance) in every sampler, EDM2's sampler against a restatement
of its algorithm, exact round trips and edits with guidance, and the errors."""

import warnings

import numpy as np
import pytest
import torch

from edm_bdia.analytic import GaussianMixtureDenoiser, toy_mixture_32x32_cond
from edm_bdia.sample import (ablation_sampler, bdia_edit, bdia_encode, bdia_invert, bdia_sample, bdia_sampler,
                             edm2_sampler, edm_sampler)
from edm_bdia.speed import accelerate
from helpers.nets import CountingNet, TinyNonlinearNet, tiny_edm_net


def _latents(batch=2, seed=0, dtype=torch.float64):
    return torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class SecondFormula(torch.nn.Module):
    """The guided denoiser written out as D_g + w (D - D_g) in float64, for comparison."""

    def __init__(self, net, gnet, guidance):
        super().__init__()
        self.net, self.gnet, self.guidance = net, gnet, guidance
        self.img_channels, self.img_resolution, self.label_dim = net.img_channels, net.img_resolution, net.label_dim
        self.sigma_min, self.sigma_max = net.sigma_min, net.sigma_max

    def round_sigma(self, sigma):
        return self.net.round_sigma(sigma)

    def forward(self, x, sigma, class_labels=None):
        d = self.net(x, sigma, class_labels).double()
        g = self.gnet(x, sigma, class_labels if self.gnet.label_dim else None).double()
        return g + self.guidance * (d - g)


CONDITIONAL = dict(net=lambda: TinyNonlinearNet(label_dim=4, seed=0), labels=torch.eye(4)[[1, 3]])


@pytest.mark.parametrize('gnet_labels', [4, 0], ids=['autoguidance', 'classifier-free'])
@pytest.mark.parametrize('sample', [
    lambda net, z, c, **g: edm_sampler(net, z, c, num_steps=6, **g),
    lambda net, z, c, **g: ablation_sampler(net, z, c, num_steps=6, solver='euler', discretization='vp',
                                            schedule='vp', scaling='vp', **g),
    lambda net, z, c, **g: bdia_sampler(net, z, c, num_steps=8, **g),
    lambda net, z, c, **g: edm2_sampler(net, z, c, num_steps=6, dtype=torch.float64, **g),
], ids=['edm', 'ablation', 'bdia', 'edm2'])
def test_every_sampler_samples_the_guided_denoiser(sample, gnet_labels):
    net, labels = CONDITIONAL['net'](), CONDITIONAL['labels']
    gnet = TinyNonlinearNet(label_dim=gnet_labels, seed=1)
    z = _latents()
    guided = sample(net, z, labels, gnet=gnet, guidance=1.7)
    expected = sample(SecondFormula(net, gnet, 1.7), z, labels)
    torch.testing.assert_close(guided, expected, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(guided, sample(net, z, labels), atol=1e-3)  # guidance changes the images


def test_guidance_one_is_the_network_alone_and_never_calls_the_guiding_network():
    net, labels = CONDITIONAL['net'](), CONDITIONAL['labels']
    gnet = CountingNet(TinyNonlinearNet(label_dim=4, seed=1))
    z = _latents()
    assert torch.equal(edm_sampler(net, z, labels, num_steps=5, gnet=gnet, guidance=1),
                       edm_sampler(net, z, labels, num_steps=5))
    assert gnet.calls == 0


def test_an_unconditional_guiding_network_gets_no_labels():
    net, labels = CONDITIONAL['net'](), CONDITIONAL['labels']
    seen = []
    gnet = TinyNonlinearNet(label_dim=0, seed=1)
    original = gnet.forward
    gnet.forward = lambda x, sigma, class_labels=None: seen.append(class_labels) or original(x, sigma, class_labels)
    edm_sampler(net, _latents(), labels, num_steps=4, gnet=gnet, guidance=2)
    assert seen and all(c is None for c in seen)


def restated_edm2(net, noise, labels, gnet, num_steps, guidance, S_churn, randn_like, sigma_min=0.002, sigma_max=80,
                  rho=7):
    """EDM2's sampler written out from the EDM paper's Algorithm 2 with EDM2's choices: float32 throughout, EDM eq. 5
    without rounding, guidance as a lerp of the two denoisers, noise drawn only on churning steps."""
    def denoise(x, t):
        d = net(x, t, labels).to(torch.float32)
        return d if guidance == 1 else gnet(x, t, labels).to(torch.float32).lerp(d, guidance)
    i = torch.arange(num_steps, dtype=torch.float32)
    t = (sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t = torch.cat([t, torch.zeros(1)])
    x = noise.to(torch.float32) * t[0]
    for k in range(num_steps):
        t_hat, x_hat = t[k], x
        if S_churn > 0:
            gamma = min(S_churn / num_steps, np.sqrt(2) - 1)
            t_hat = t[k] + gamma * t[k]
            x_hat = x + (t_hat ** 2 - t[k] ** 2).sqrt() * randn_like(x)
        d = (x_hat - denoise(x_hat, t_hat)) / t_hat
        x = x_hat + (t[k + 1] - t_hat) * d
        if k < num_steps - 1:
            x = x_hat + (t[k + 1] - t_hat) * (0.5 * d + 0.5 * (x - denoise(x, t[k + 1])) / t[k + 1])
    return x


@pytest.mark.parametrize('guidance, S_churn', [(1, 0), (2.2, 0), (1.4, 10)])
def test_edm2_sampler_is_edm2s_algorithm_bit_for_bit(guidance, S_churn):
    net = tiny_edm_net(label_dim=4, seed=0)
    gnet = tiny_edm_net(label_dim=4, seed=1)
    noise, labels = _latents(dtype=torch.float32), torch.eye(4)[[1, 3]]

    def draws():
        generator = torch.Generator().manual_seed(5)
        calls = []
        return calls, lambda x: calls.append(1) or torch.randn(x.shape, generator=generator, dtype=x.dtype)
    ours_calls, ours_randn = draws()
    theirs_calls, theirs_randn = draws()
    with torch.no_grad():
        ours = edm2_sampler(net, noise, labels, gnet, num_steps=6, guidance=guidance, S_churn=S_churn,
                            randn_like=ours_randn)
        theirs = restated_edm2(net, noise, labels, gnet, 6, guidance, S_churn, theirs_randn)
    assert ours.dtype == torch.float32 and torch.equal(ours, theirs)
    assert len(ours_calls) == len(theirs_calls) == (6 if S_churn else 0)


def _weaker(mixture):
    """A worse version of `mixture`: the same means, every component twice as wide (a stand-in for autoguidance's
    smaller, less trained network)."""
    return GaussianMixtureDenoiser(mixture.means, mixture.factors * 2, mixture.noise_var * 4,
                                   mixture.component_class, mixture.label_dim, mixture.img_channels,
                                   mixture.img_resolution)


@pytest.fixture(scope='module')
def toy_pair():
    net = toy_mixture_32x32_cond()
    classes = [0, 3, 5, 8]
    images = net.sample_data(torch.tensor(classes), generator=torch.Generator().manual_seed(7))
    return net, _weaker(net), images, torch.eye(10, dtype=torch.float64)[classes]


def test_round_trips_with_guidance_are_exact(toy_pair):
    net, gnet, images, labels = toy_pair
    z = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    guidance = dict(gnet=gnet, guidance=1.8)
    sampled = bdia_sample(net, z, labels, num_steps=18, **guidance)
    start = bdia_invert(net, sampled.pair, labels, num_steps=18, **guidance).pair
    assert ((start.x / 80 - z).abs().max() / z.abs().max()).item() <= 1e-9
    regenerated = bdia_sample(net, start, labels, num_steps=18, **guidance).images
    assert ((regenerated - sampled.images).abs().max() / sampled.images.abs().max()).item() <= 1e-9
    encoded = bdia_encode(net, images, labels, num_steps=18, **guidance).pair
    back = bdia_sample(net, encoded, labels, num_steps=18, **guidance).images
    assert ((back - images).abs().max() / images.abs().max()).item() <= 1e-9


def test_guided_edits_land_in_the_target_class_and_stay_in_range(toy_pair):
    net, gnet, images, labels = toy_pair
    targets = [2, 9, 1, 4]
    edited = bdia_edit(net, images, labels, torch.eye(10, dtype=torch.float64)[targets], gnet=gnet,
                       guidance=1.8).images
    assert (net.class_posterior(edited)[torch.arange(4), targets] > 0.99).all()
    assert edited.abs().max() < 1.5


def test_a_16_bit_guiding_network_is_refused_in_round_trips_by_name():
    net = tiny_edm_net()
    gnet = accelerate(tiny_edm_net(seed=1), mode='bf16', allow_emulated_bf16=True)
    with pytest.raises(ValueError, match="gnet runs in speed mode 'bf16'"):
        bdia_encode(net, torch.zeros(2, 3, 8, 8, dtype=torch.float64), gnet=gnet, guidance=2)


@pytest.mark.parametrize('call, message', [
    (lambda net, z: edm_sampler(net, z, guidance=2), 'gnet is needed for guidance 2'),
    (lambda net, z: edm_sampler(net, z, gnet=TinyNonlinearNet(resolution=4), guidance=2), r'gnet makes 3x4x4 images'),
    (lambda net, z: edm_sampler(net, z, gnet=TinyNonlinearNet(channels=1), guidance=2), r'gnet makes 1x8x8 images'),
    (lambda net, z: edm_sampler(net, z, gnet=TinyNonlinearNet(label_dim=3), guidance=2), 'gnet has 3 classes'),
    (lambda net, z: bdia_sampler(net, z, gnet=TinyNonlinearNet(), guidance=float('nan')),
     'guidance must be a finite number'),
    (lambda net, z: edm2_sampler(net, z, guidance='2'), 'guidance must be a finite number'),
])
def test_guidance_errors_name_the_argument(call, message):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ValueError, match=message):
            call(TinyNonlinearNet(), _latents())
