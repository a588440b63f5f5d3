"""Preconditioners wrapping a UNet into a denoiser D(x; σ) (Karras et al. 2022, Eq. 7 and Table 1).

D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)). Coefficients are written in the reference's
scalar/tensor forms: a Python scalar divided by a tensor, `sigma ** 2`, `1 / sqrt(...)` (docs/networks.md,
'Preconditioners' and 'Scalar divided by tensor').
"""

import numpy as np
import torch
from torch_utils import persistence

from edm_bdia.networks.dhariwal import DhariwalUNet
from edm_bdia.networks.songunet import SongUNet

MODEL_TYPES = {'SongUNet': SongUNet, 'DhariwalUNet': DhariwalUNet}


def build_model(model_type, **model_kwargs):
    """Instantiate the UNet named by `model_type` ('SongUNet' or 'DhariwalUNet')."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f'model_type={model_type!r} is not supported; use one of {", ".join(MODEL_TYPES)}')
    return MODEL_TYPES[model_type](**model_kwargs)


def unet_dtype(use_fp16, force_fp32, device):
    """f16 only for use_fp16 on CUDA (docs/networks.md, 'fp16 mode'); f32 everywhere else, including CPU with
    use_fp16=True."""
    return torch.float16 if use_fp16 and not force_fp32 and torch.device(device).type == 'cuda' else torch.float32


def conditioning_labels(class_labels, label_dim, device):
    """The labels a UNet gets: None for an unconditional net, zeros [1, label_dim] when none are given (the
    unconditional embedding of a conditional net), else f32 [N, label_dim]."""
    if not label_dim:
        return None
    if class_labels is None:
        return torch.zeros([1, label_dim], device=device)
    return class_labels.to(torch.float32).reshape(-1, label_dim)


def edm_coefficients(sigma, sigma_data):
    """EDM's (c_skip, c_out, c_in, c_noise) for f32 sigma [N, 1, 1, 1] (Karras et al. 2022, Table 1)."""
    c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
    c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2).sqrt()
    c_in = 1 / (sigma_data ** 2 + sigma ** 2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


class _Preconditioner(torch.nn.Module):
    """Shared construction and forward pass (docs/networks.md, 'Common forward pass'); subclasses supply
    `coefficients(sigma)`."""

    def _init_common(self, img_resolution, img_channels, label_dim, use_fp16):
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.label_dim = label_dim
        self.use_fp16 = use_fp16

    def _init_model(self, model_type, model_out_channels, model_kwargs):
        self.model = build_model(model_type, img_resolution=self.img_resolution, in_channels=self.img_channels,
                                 out_channels=model_out_channels, label_dim=self.label_dim, **model_kwargs)

    def round_sigma(self, sigma):
        """Noise levels are continuous: the identity, as a tensor."""
        return torch.as_tensor(sigma)

    def coefficients(self, sigma):
        """(c_skip, c_out, c_in, c_noise) for f32 sigma of shape [N, 1, 1, 1]."""
        raise NotImplementedError

    def model_dtype(self, x, force_fp32):
        """The UNet's dtype for input x (see `unet_dtype`)."""
        return unet_dtype(self.use_fp16, force_fp32, x.device)

    def forward(self, x, sigma, class_labels=None, force_fp32=False, **model_kwargs):
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, device=x.device).to(torch.float32).reshape(-1, 1, 1, 1)
        class_labels = conditioning_labels(class_labels, self.label_dim, x.device)
        dtype = self.model_dtype(x, force_fp32)

        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        F_x = self.model((c_in * x).to(dtype), c_noise.flatten(), class_labels=class_labels, **model_kwargs)
        if F_x.dtype != dtype:
            raise RuntimeError(f'{type(self).__name__}: the model returned {F_x.dtype}, expected {dtype}')
        # Only the first img_channels output channels are the prediction (iDDPM's model outputs twice as many).
        return c_skip * x + c_out * F_x[:, :self.img_channels].to(torch.float32)


@persistence.persistent_class
class VPPrecond(_Preconditioner):
    """Variance-preserving preconditioning (DDPM++ baselines)."""

    def __init__(self, img_resolution, img_channels, label_dim=0, use_fp16=False, beta_d=19.9, beta_min=0.1, M=1000,
                 epsilon_t=1e-5, model_type='SongUNet', **model_kwargs):
        super().__init__()
        self._init_common(img_resolution, img_channels, label_dim, use_fp16)
        self.beta_d = beta_d
        self.beta_min = beta_min
        self.M = M
        self.epsilon_t = epsilon_t
        # Computed in f32 (docs/networks.md, 'VP noise range in float32'); on the CPU, so that they are plain numbers
        # also when the network is built on another (meta) device.
        with torch.device('cpu'):
            self.sigma_min = float(self.sigma(epsilon_t))  # f32: 2**-10 for the defaults, not 0.001
            self.sigma_max = float(self.sigma(1))
        self._init_model(model_type, img_channels, model_kwargs)

    def sigma(self, t):
        """σ(t) = sqrt(exp(½β_d·t² + β_min·t) − 1)."""
        t = torch.as_tensor(t)
        return ((0.5 * self.beta_d * (t ** 2) + self.beta_min * t).exp() - 1).sqrt()

    def sigma_inv(self, sigma):
        """σ⁻¹(s) = (sqrt(β_min² + 2β_d·ln(1 + s²)) − β_min) / β_d."""
        sigma = torch.as_tensor(sigma)
        return ((self.beta_min ** 2 + 2 * self.beta_d * (1 + sigma ** 2).log()).sqrt() - self.beta_min) / self.beta_d

    def coefficients(self, sigma):
        return 1, -sigma, 1 / (sigma ** 2 + 1).sqrt(), (self.M - 1) * self.sigma_inv(sigma)


@persistence.persistent_class
class VEPrecond(_Preconditioner):
    """Variance-exploding preconditioning (NCSN++ baselines)."""

    def __init__(self, img_resolution, img_channels, label_dim=0, use_fp16=False, sigma_min=0.02, sigma_max=100,
                 model_type='SongUNet', **model_kwargs):
        super().__init__()
        self._init_common(img_resolution, img_channels, label_dim, use_fp16)
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self._init_model(model_type, img_channels, model_kwargs)

    def coefficients(self, sigma):
        return 1, sigma, 1, (0.5 * sigma).log()


@persistence.persistent_class
class iDDPMPrecond(_Preconditioner):  # pylint: disable=invalid-name
    """Improved-DDPM preconditioning with a discrete noise-level table `u` (ADM baseline)."""

    def __init__(self, img_resolution, img_channels, label_dim=0, use_fp16=False, C_1=0.001, C_2=0.008, M=1000,
                 model_type='DhariwalUNet', **model_kwargs):
        super().__init__()
        self._init_common(img_resolution, img_channels, label_dim, use_fp16)
        self.C_1 = C_1
        self.C_2 = C_2
        self.M = M
        self._init_model(model_type, img_channels * 2, model_kwargs)
        self.register_buffer('u', self._noise_table())  # registered after model, yet state_dict entry 0
        self.sigma_min = float(self.u[M - 1])
        self.sigma_max = float(self.u[0])

    def alpha_bar(self, j):
        """ᾱ(j) = sin²((π/2)·j / M / (C_2 + 1))."""
        j = torch.as_tensor(j)
        return (0.5 * np.pi * j / self.M / (self.C_2 + 1)).sin() ** 2

    def _noise_table(self):
        """u[M] = 0; u[j−1] = sqrt((u[j]² + 1) / max(ᾱ(j−1)/ᾱ(j), C_1) − 1), element by element in f32.

        Always computed on the CPU, as in the published pickles (and so that a meta-device build works)."""
        with torch.device('cpu'):
            u = torch.zeros(self.M + 1)
            for j in range(self.M, 0, -1):
                u[j - 1] = ((u[j] ** 2 + 1) / (self.alpha_bar(j - 1) / self.alpha_bar(j)).clip(min=self.C_1) - 1).sqrt()
        return u

    def round_sigma(self, sigma, return_index=False):
        """Nearest entry of `u` (or its index) by torch.cdist's matmul-form distance, first minimum wins
        (docs/networks.md, 'iDDPM σ rounding with torch.cdist')."""
        sigma = torch.as_tensor(sigma)
        distances = torch.cdist(sigma.to(self.u.device).to(torch.float32).reshape(1, -1, 1), self.u.reshape(1, -1, 1))
        index = distances.argmin(2)
        result = index if return_index else self.u[index.flatten()].to(sigma.dtype)
        return result.reshape(sigma.shape).to(sigma.device)

    def coefficients(self, sigma):
        c_noise = self.M - 1 - self.round_sigma(sigma, return_index=True).to(torch.float32)
        return 1, -sigma, 1 / (sigma ** 2 + 1).sqrt(), c_noise


@persistence.persistent_class
class EDMPrecond(_Preconditioner):
    """EDM preconditioning (Karras et al. 2022), used by every published edm-* pickle."""

    def __init__(self, img_resolution, img_channels, label_dim=0, use_fp16=False, sigma_min=0, sigma_max=float('inf'),
                 sigma_data=0.5, model_type='DhariwalUNet', **model_kwargs):
        super().__init__()
        self._init_common(img_resolution, img_channels, label_dim, use_fp16)
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.sigma_data = sigma_data
        self._init_model(model_type, img_channels, model_kwargs)

    def coefficients(self, sigma):
        return edm_coefficients(sigma, self.sigma_data)
