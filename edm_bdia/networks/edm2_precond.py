"""EDM2's preconditioned denoiser `Precond` (docs/networks.md, 'EDM2 Precond'): EDM preconditioning around the
EDM2 UNet, plus the learned uncertainty log-variance used by EDM2's training loss."""

import torch
from torch_utils import persistence

from edm_bdia.networks.edm2_unet import UNet
from edm_bdia.networks.mp_layers import MPConv, MPFourier, freeze_weight_normalization
from edm_bdia.networks.precond import conditioning_labels, edm_coefficients, unet_dtype


@persistence.persistent_class
class Precond(torch.nn.Module):
    """D(x; σ) = c_skip·x + c_out·F(c_in·x; ln(σ)/4, labels) with EDM's coefficients in float32.

    Like EDMPrecond for the samplers: `sigma_min` 0, `sigma_max` inf and `round_sigma` the identity (a tensor of
    the argument's dtype) are class attributes, so the state dict and the pickled state stay NVlabs'.
    """

    sigma_min = 0
    sigma_max = float('inf')

    def __init__(self, img_resolution, img_channels, label_dim, use_fp16=True, sigma_data=0.5, logvar_channels=128,
                 **unet_kwargs):
        super().__init__()
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.label_dim = label_dim
        self.use_fp16 = use_fp16
        self.sigma_data = sigma_data
        self.unet = UNet(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim, **unet_kwargs)
        self.logvar_fourier = MPFourier(logvar_channels)
        self.logvar_linear = MPConv(logvar_channels, 1, kernel=[])

    def round_sigma(self, sigma):
        """Noise levels are continuous: the identity, as a tensor."""
        return torch.as_tensor(sigma)

    def model_dtype(self, x, force_fp32):
        """float16 only for use_fp16 on CUDA without force_fp32; float32 everywhere else (also on the CPU with
        use_fp16=True)."""
        return unet_dtype(self.use_fp16, force_fp32, x.device)

    def forward(self, x, sigma, class_labels=None, force_fp32=False, return_logvar=False, **unet_kwargs):
        """D(x; σ) in float32 for x [N, C, H, W], σ a scalar or [N] and one-hot labels [N, label_dim] (None: zeros);
        with return_logvar also the log-variance [N, 1, 1, 1] of the denoising error EDM2 learned."""
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, device=x.device).to(torch.float32).reshape(-1, 1, 1, 1)
        class_labels = conditioning_labels(class_labels, self.label_dim, x.device)
        dtype = self.model_dtype(x, force_fp32)

        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        c_noise = c_noise.flatten()

        F_x = self.unet((c_in * x).to(dtype), c_noise, class_labels, **unet_kwargs)
        D_x = c_skip * x + c_out * F_x.to(torch.float32)
        if return_logvar:
            return D_x, self.logvar_linear(self.logvar_fourier(c_noise)).reshape(-1, 1, 1, 1)
        return D_x

    def freeze_weight_normalization(self, frozen=True):
        """Normalise each MPConv weight once and reuse it across calls (True), for inference with frozen weights,
        or on every call again (False, the default). A frozen layer still recomputes after its weight, gain or
        the input dtype changed, and `train()` unfreezes (docs/networks.md, 'Weight normalisation once per frozen
        network'). Returns the number of MPConv layers."""
        return freeze_weight_normalization(self, frozen)
