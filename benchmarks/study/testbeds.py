"""The study's testbeds: a network, latents to sample from, real images to encode, and their reference solutions.

Reference images: the exact solution of the probability-flow ODE at t = 0 (closed form for the Gaussian, DOP853
down to t = 1e-9 for the mixtures). Every sampler on EDM's schedule ends with an Euler step from sigma_min = 0.002
to 0, x = D(x; sigma_min), or a short extrapolation over that interval; the distance from that step's landing point
to the exact x(0) is reported per analytic testbed (`final_step_floor`): no sampler on this schedule gets
systematically closer, so errors below it are compared as equal (benchmarks/study/recommend.py).
Reference latents: the exact ODE encoding of the real images, from t = 0 (closed form; DOP853 from t = 1e-9) up to
t_0. The digits network was never trained below sigma_min, so its images there are not data: its reference images
are DOP853 down to sigma_min followed by x = D(x; sigma_min); its reference latents are its ODE solved from t = 0
like the others' (the ODE is defined there: with EDM's preconditioning D(x; t) -> x as t -> 0).

The third edition's testbeds vary what the default invertible sampler was not tuned on: data scale (the toy
mixture scaled to std 3 and 0.05), dimension and sharpness (500 components of std 0.002 in 1x64x64; data on
3-dimensional subspaces of 1x16x16; a 2-D grid with std 0.005; 2-D modes of std 0.2, 0.02 and 0.002 side by
side) and the prior (one class with 91 % of the mass).
"""

import dataclasses
from typing import Callable, Optional

import torch

from edm_bdia.analytic import (GaussianDenoiser, GaussianMixtureDenoiser, grid_mixture_2d, sharp_mixture,
                               toy_mixture_32x32_cond)
from edm_bdia.sample import karras_sigmas

from .reference import final_denoising_step, ode_solve

SIGMA_MIN = 0.002
T_ZERO = 1e-9  # "t = 0" for the exact solves: x(t) no longer moves at float64 precision there


@dataclasses.dataclass
class Testbed:
    name: str
    title: str
    net: torch.nn.Module
    latents: torch.Tensor
    labels: Optional[torch.Tensor]  # one-hot rows for sampling, or None (unconditional)
    reference: torch.Tensor  # the exact / reference images from `latents`
    real: torch.Tensor  # real images (exact draws, or held-out digits) to encode
    real_classes: Optional[torch.Tensor]  # their classes [n] (int64), or None
    reference_latents: torch.Tensor  # exact ODE latents of `real`
    classify: Optional[Callable] = None  # images -> class [n]: exact posterior argmax, or a trained classifier
    modes: Optional[Callable] = None  # images -> nearest mode [n] (the 2-D grid)
    held_out: Optional[torch.Tensor] = None  # real data for a distribution distance (digits)
    real_labels: Optional[torch.Tensor] = None  # the label rows of `real` when they are not one-hot (class weights)
    reference_nfe: int = 0
    final_step_floor: Optional[float] = None  # RMS of the final denoising step's own error against the exact x(0)
    notes: str = ''

    def one_hot(self, classes):
        return torch.nn.functional.one_hot(classes, self.net.label_dim).to(torch.float64)

    def labels_of_real(self):
        """The label rows the real images are encoded under: their one-hot classes, or the class weights."""
        if self.real_labels is not None:
            return self.real_labels
        return None if self.real_classes is None else self.one_hot(self.real_classes)


def _randn(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def references(net, latents, labels, real, real_labels, tolerance, exact_to_zero=True):
    """(reference images, reference latents, network evaluations, final-step floor) by the module's convention."""
    t0 = karras_sigmas(2)[0].item()
    near_zero, nfe_forward = ode_solve(net, latents * t0, labels, t0, SIGMA_MIN, tolerance)
    final_step = final_denoising_step(net, near_zero, labels, SIGMA_MIN)
    encoded, nfe_backward = ode_solve(net, real, real_labels, T_ZERO, t0, tolerance)
    if not exact_to_zero:
        return final_step, encoded / t0, nfe_forward + nfe_backward, None
    images, nfe_zero = ode_solve(net, near_zero, labels, SIGMA_MIN, T_ZERO, tolerance)
    floor = ((final_step - images) ** 2).mean().sqrt().item()
    return images, encoded / t0, nfe_forward + nfe_zero + nfe_backward, floor


def _mixture_testbed(name, title, net, config, seed, conditional=True, class_weights=None, notes=''):
    """A testbed of an exact mixture: samples of every class in turn (one-hot labels), or unconditional ones; with
    `class_weights`, samples and real images of the mixture whose classes have these prior weights (the samplers
    get the weights as the label row: the mixture's denoiser conditions on weight rows)."""
    count = config.samples[name]
    latents = _randn((count, net.img_channels, net.img_resolution, net.img_resolution), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    if class_weights is not None:
        weights = torch.as_tensor(class_weights, dtype=torch.float64)
        labels = weights.expand(count, -1).clone()
        real_classes = torch.multinomial(weights, config.real[name], replacement=True, generator=generator)
        real_labels = weights.expand(len(real_classes), -1).clone()
    else:
        classes = torch.arange(count) % net.label_dim
        labels = torch.nn.functional.one_hot(classes, net.label_dim).to(torch.float64) if conditional else None
        real_classes = torch.arange(config.real[name]) % net.label_dim
        real_labels = torch.nn.functional.one_hot(real_classes, net.label_dim).to(torch.float64)
    real = net.sample_data(real_classes, generator=generator)
    reference, reference_latents, nfe, floor = references(net, latents, labels, real, real_labels, config.tolerance)
    return Testbed(name, title, net, latents, labels, reference, real, real_classes, reference_latents,
                   classify=lambda x: net.class_posterior(x).argmax(1), reference_nfe=nfe, final_step_floor=floor,
                   real_labels=real_labels if class_weights is not None else None, notes=notes)


def _mixture(means, stds, component_class, label_dim, channels, resolution, factors=None):
    """A GaussianMixtureDenoiser of components N(m_k, U_k U_k^T + s_k^2 I) (no U_k: isotropic)."""
    means = torch.as_tensor(means, dtype=torch.float64)
    if factors is None:
        factors = torch.zeros(len(means), means.shape[1], 0, dtype=torch.float64)
    variances = torch.as_tensor(stds, dtype=torch.float64).expand(len(means)) ** 2
    return GaussianMixtureDenoiser(means, factors, variances, torch.as_tensor(component_class), label_dim, channels,
                                   resolution)


def _scaled(net, scale):
    """The mixture of x * scale for x drawn from `net`'s mixture."""
    return GaussianMixtureDenoiser(net.means * scale, net.factors * scale, net.noise_var * scale ** 2,
                                   net.component_class, net.label_dim, net.img_channels, net.img_resolution)


def gaussian(config):
    mixture = toy_mixture_32x32_cond()
    mean, cov = mixture.data_moments()
    net = GaussianDenoiser(mean.reshape(3, 32, 32), cov.diagonal().sqrt().reshape(3, 32, 32))
    t0 = karras_sigmas(2)[0].item()
    latents = _randn((config.samples['gaussian'], 3, 32, 32), 10)
    real = net.mean + net.std * _randn((config.real['gaussian'], 3, 32, 32), 11)
    reference = net.exact_solution(latents, t0)
    final_step = final_denoising_step(net, net.exact_solution(latents, t0, SIGMA_MIN), None, SIGMA_MIN)
    floor = ((final_step - reference) ** 2).mean().sqrt().item()
    return Testbed('gaussian', 'Gaussian (exact solution)', net, latents, None, reference, real, None,
                   net.exact_latents(real, t0), final_step_floor=floor,
                   notes='per-pixel mean and std of the built-in mixture; closed-form ODE solution')


def toy_mixture(config):
    return _mixture_testbed('toy', 'toy-mixture-32x32-cond', toy_mixture_32x32_cond(), config, 20,
                            notes='built-in model: 10 classes x 2 components, rank-4 variations, pixel std 0.05')


def sharp(config):
    return _mixture_testbed('sharp', 'sharp mixture (100 x 3x32x32, std 0.01)', sharp_mixture(), config, 30,
                            notes='100 isotropic components (10 classes x 10) in 3x32x32, per-pixel std 0.01')


def grid(config):
    bed = _mixture_testbed('grid', '2-D grid (25 modes, std 0.02)', grid_mixture_2d(), config, 40,
                           conditional=False,
                           notes='5 x 5 modes, spacing 0.5, std 0.02, sampled unconditionally; classes = rows')
    bed.modes = bed.net.nearest_component
    return bed


def toy_scaled(scale):
    def build(config):
        name = f'toy-x{scale:g}'
        return _mixture_testbed(name, f'toy mixture x {scale:g} (data std {0.5 * scale:g})',
                                _scaled(toy_mixture_32x32_cond(), scale), config, 60,
                                notes=f'the built-in model with every image multiplied by {scale:g}')
    return build


def sharp_fine(config):
    """500 components (10 classes) of std 0.002 in 1x64x64, smooth random means in [-0.8, 0.8]."""
    generator = torch.Generator().manual_seed(70)
    coarse = torch.randn(500, 1, 16, 16, generator=generator, dtype=torch.float64)
    means = torch.nn.functional.interpolate(coarse, size=64, mode='bilinear').clamp(-1, 1).reshape(500, -1) * 0.8
    net = _mixture(means, 0.002, torch.arange(500) % 10, 10, 1, 64)
    return _mixture_testbed('sharp-64', '500 sharp components (1x64x64, std 0.002)', net, config, 71,
                            notes='500 isotropic components (10 classes x 50) in 1x64x64, per-pixel std 0.002, '
                                  'below sigma_min')


def low_rank(config):
    """8 components (4 classes) on 3-dimensional affine subspaces of 1x16x16, std 1e-3 off the subspace."""
    generator = torch.Generator().manual_seed(80)
    means = 0.4 * torch.randn(8, 256, generator=generator, dtype=torch.float64)
    factors = torch.randn(8, 256, 3, generator=generator, dtype=torch.float64) * 0.3
    net = _mixture(means, 1e-3, torch.arange(8) % 4, 4, 1, 16, factors=factors)
    return _mixture_testbed('low-rank', 'data on 3-D subspaces (1x16x16)', net, config, 81,
                            notes='8 components (4 classes x 2) of rank 3 (std ~0.3 along the subspace) in 1x16x16, '
                                  'std 1e-3 off it')


def grid_fine(config):
    bed = _mixture_testbed('grid-fine', '2-D grid (25 modes, std 0.005)', grid_mixture_2d(std=0.005), config, 90,
                           conditional=False, notes='5 x 5 modes, spacing 0.5, std 0.005, sampled unconditionally')
    bed.modes = bed.net.nearest_component
    return bed


def unequal_widths(config):
    means = [[-0.6, 0.0], [0.0, 0.5], [0.6, -0.2]]
    net = _mixture(means, [0.2, 0.02, 0.002], [0, 1, 2], 3, 2, 1)
    bed = _mixture_testbed('widths-2d', '2-D modes of std 0.2, 0.02 and 0.002', net, config, 100, conditional=False,
                           notes='three 2-D modes, one class each, of std 0.2, 0.02 and 0.002, sampled '
                                 'unconditionally')
    bed.modes = bed.net.nearest_component
    return bed


def imbalanced(config):
    weights = [0.91] + [0.01] * 9
    return _mixture_testbed('imbalanced', 'sharp mixture, one class 91 %', sharp_mixture(), config, 110,
                            class_weights=weights,
                            notes='the sharp mixture with class prior weights 0.91 and 9 x 0.01, sampled with '
                                  'those weights as the label')


def digits(config):
    """The digits network, or None when scikit-learn (the `bench` extra) is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return None
    from .digits import digit_classifier, load_digits_split, load_or_train
    net = load_or_train(quick=config.quick, log=config.log)
    _, _, held_x, held_y = load_digits_split()
    count = config.samples['digits']
    latents = _randn((count, 1, 8, 8), 50)
    classes = torch.arange(count) % 10
    labels = torch.nn.functional.one_hot(classes, 10).to(torch.float64)
    pick = torch.arange(min(config.real['digits'], len(held_x)))
    real, real_classes = held_x[pick], held_y[pick]
    real_labels = torch.nn.functional.one_hot(real_classes, 10).to(torch.float64)
    with torch.no_grad():
        reference, reference_latents, nfe, _ = references(net, latents, labels, real, real_labels,
                                                          config.tolerance, exact_to_zero=False)
    return Testbed('digits', 'digits net (8x8, trained here)', net, latents, labels, reference, real, real_classes,
                   reference_latents, classify=digit_classifier(), held_out=held_x, reference_nfe=nfe,
                   notes='class-conditional EDM-preconditioned MLP trained on scikit-learn digits; real = held-out')


BUILDERS = {'gaussian': gaussian, 'toy': toy_mixture, 'sharp': sharp, 'grid': grid, 'digits': digits,
            'toy-x6': toy_scaled(6), 'toy-x0.1': toy_scaled(0.1), 'sharp-64': sharp_fine, 'low-rank': low_rank,
            'grid-fine': grid_fine, 'widths-2d': unequal_widths, 'imbalanced': imbalanced}

