"""The study's testbeds: a network, latents to sample from, real images to encode, and their reference solutions.

Reference images: the exact solution of the probability-flow ODE at t = 0 (closed form for the Gaussian, DOP853
down to t = 1e-9 for the mixtures). Every sampler on EDM's schedule ends with an Euler step from sigma_min = 0.002
to 0, x = D(x; sigma_min), or a short extrapolation over that interval; the distance from that step's landing point
to the exact x(0) is reported per analytic testbed (`final_step_floor`): no sampler on this schedule gets
systematically closer, so errors below it are compared as equal (benchmarks/study/recommend.py).
Reference latents: the exact ODE encoding of the real images, from t = 0 (closed form; DOP853 from t = 1e-9) up to
t_0. The digits network was never trained below sigma_min, so its ODE there is undefined: its reference images are
DOP853 down to sigma_min followed by x = D(x; sigma_min), and its reference latents start at sigma_min, reached by
one trapezoidal step (`first_encoding_step`).
"""

import dataclasses
from typing import Callable, Optional

import torch

from edm_bdia.analytic import GaussianDenoiser, grid_mixture_2d, sharp_mixture, toy_mixture_32x32_cond
from edm_bdia.sample import karras_sigmas

from .reference import final_denoising_step, first_encoding_step, ode_solve

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
    reference_nfe: int = 0
    final_step_floor: Optional[float] = None  # RMS of the final denoising step's own error against the exact x(0)
    notes: str = ''

    def one_hot(self, classes):
        return torch.nn.functional.one_hot(classes, self.net.label_dim).to(torch.float64)


def _randn(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def references(net, latents, labels, real, real_labels, tolerance, exact_to_zero=True):
    """(reference images, reference latents, network evaluations, final-step floor) by the module's convention."""
    t0 = karras_sigmas(2)[0].item()
    near_zero, nfe_forward = ode_solve(net, latents * t0, labels, t0, SIGMA_MIN, tolerance)
    final_step = final_denoising_step(net, near_zero, labels, SIGMA_MIN)
    if not exact_to_zero:
        start = first_encoding_step(net, real, real_labels, SIGMA_MIN)
        encoded, nfe_backward = ode_solve(net, start, real_labels, SIGMA_MIN, t0, tolerance)
        return final_step, encoded / t0, nfe_forward + nfe_backward, None
    images, nfe_zero = ode_solve(net, near_zero, labels, SIGMA_MIN, T_ZERO, tolerance)
    encoded, nfe_backward = ode_solve(net, real, real_labels, T_ZERO, t0, tolerance)
    floor = ((final_step - images) ** 2).mean().sqrt().item()
    return images, encoded / t0, nfe_forward + nfe_zero + nfe_backward, floor


def _mixture_testbed(name, title, net, config, seed, conditional=True, notes=''):
    count = config.samples[name]
    latents = _randn((count, net.img_channels, net.img_resolution, net.img_resolution), seed)
    classes = torch.arange(count) % net.label_dim
    labels = torch.nn.functional.one_hot(classes, net.label_dim).to(torch.float64) if conditional else None
    real_classes = torch.arange(config.real[name]) % net.label_dim
    real = net.sample_data(real_classes, generator=torch.Generator().manual_seed(seed + 1))
    real_labels = torch.nn.functional.one_hot(real_classes, net.label_dim).to(torch.float64)
    reference, reference_latents, nfe, floor = references(net, latents, labels, real, real_labels, config.tolerance)
    return Testbed(name, title, net, latents, labels, reference, real, real_classes, reference_latents,
                   classify=lambda x: net.class_posterior(x).argmax(1), reference_nfe=nfe, final_step_floor=floor,
                   notes=notes)


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


BUILDERS = {'gaussian': gaussian, 'toy': toy_mixture, 'sharp': sharp, 'grid': grid, 'digits': digits}

