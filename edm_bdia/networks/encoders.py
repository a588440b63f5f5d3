"""Encoders between images and the space an EDM2 network works in (docs/networks.md, 'EDM2 encoders').

An EDM2 pickle carries one under `encoder` (older snapshots do not: they mean `StandardRGBEncoder`).
`StandardRGBEncoder` maps 8-bit pixels to [-1, 1] (img64); `StabilityVAEEncoder` maps them to 4-channel latents of
the Stable Diffusion VAE, whitened by fixed per-channel constants (img512). Both are persistent plain objects under
NVlabs' class names, keywords and attribute names; the VAE itself is never pickled (edm_bdia.networks.stability_vae
finds it).

Images are uint8, or float holding the same 0-255 values, NCHW with 3 channels. Every encoder has
`encode(images, generator=None)` (NVlabs' encode: for the VAE, a draw from the posterior N(mean, std²)),
`encode_mean(images)` (deterministic: the posterior mean; what inversion uses), `decode(latents)` -> uint8 and
`init(device, vae_dir=None)`.
"""

import numpy as np
import torch
from torch_utils import persistence

from edm_bdia.networks.stability_vae import load_stability_vae


class Encoder:
    """What every encoder offers. Raw pixels -> raw latents (`encode_pixels`, what a dataset stores) -> final
    latents (`encode_latents`, what the network sees); `decode` goes from final latents to raw pixels."""

    def init(self, device, vae_dir=None):
        """Prepare what the encoder needs on `device` now rather than on first use. `vae_dir`: the folder a
        VAE-based encoder loads its VAE from (edm_bdia.networks.stability_vae); ignored by the others."""

    def encode(self, images, generator=None):
        """Final latents of uint8 (or 0-255 float) images [N, 3, H, W]; `generator` drives any sampling."""
        return self.encode_latents(self.encode_pixels(images), generator=generator)

    def encode_mean(self, images):
        """Final latents without sampling noise (the same as `encode` for deterministic encoders)."""
        return self.encode_latents(self.encode_pixels(images), mean_only=True)

    def encode_pixels(self, images):
        """Raw latents of uint8 (or 0-255 float) images."""
        raise NotImplementedError

    def encode_latents(self, raw, generator=None, mean_only=False):
        """Final latents of raw latents."""
        raise NotImplementedError

    def decode(self, latents):
        """uint8 images [N, 3, H, W] of final latents."""
        raise NotImplementedError

    def pixels_per_latent(self):
        """Image pixels per latent pixel along each side (after `init`)."""
        return 1


@persistence.persistent_class
class StandardRGBEncoder(Encoder):
    """Pixels scaled to [-1, 1]: x / 127.5 − 1; decode (x·127.5 + 128) clipped to [0, 255] and truncated to uint8,
    which rounds to the nearest level (the rule of NVlabs' generate scripts)."""

    def encode_pixels(self, images):
        return images

    def encode_latents(self, raw, generator=None, mean_only=False):
        return raw.to(torch.float32) / 127.5 - 1

    def decode(self, latents):
        return (latents.to(torch.float32) * 127.5 + 128).clip(0, 255).to(torch.uint8)


@persistence.persistent_class
class StabilityVAEEncoder(Encoder):
    """Latents of the Stable Diffusion VAE `vae_name` (diffusers' AutoencoderKL).

    Raw latents are the VAE posterior's mean and standard deviation (8 channels) of the images scaled to [0, 1].
    Final latents are z·scale + bias per channel, z drawn from N(mean, std²) (or the mean itself), with
    scale = final_std / raw_std and bias = final_mean − raw_mean·scale in float32, so they have about zero mean
    and standard deviation final_std. `decode` undoes the affine map, runs the VAE decoder `batch_size` images at a
    time, clamps to [0, 1] and truncates ·255 to uint8. The VAE is loaded on first use, or by `init`.
    """

    def __init__(self, vae_name='stabilityai/sd-vae-ft-mse', raw_mean=(5.81, 3.25, 0.12, -2.15),
                 raw_std=(4.17, 4.62, 3.71, 3.28), final_mean=0, final_std=0.5, batch_size=8):
        super().__init__()
        self.vae_name = vae_name
        self.scale = np.float32(final_std) / np.float32(raw_std)
        self.bias = np.float32(final_mean) - np.float32(raw_mean) * self.scale
        self.batch_size = int(batch_size)
        self._vae = None

    def init(self, device, vae_dir=None):
        """Load the VAE now (once; see edm_bdia.networks.stability_vae for `vae_dir` and the cache) and move it to
        `device`."""
        if self._vae is None:
            self._vae = load_stability_vae(self.vae_name, device=device, vae_dir=vae_dir)
        else:
            self._vae.to(device)

    def __getstate__(self):
        return dict(self.__dict__, _vae=None)  # the VAE is never pickled

    def pixels_per_latent(self):
        """The VAE halves the size at each encoder block but the last (8 for Stability's)."""
        return 2 ** (len(self._vae.config.block_out_channels) - 1)

    def encode_pixels(self, images):
        self.init(images.device)
        pixels = images.to(torch.float32) / 255
        return torch.cat([self._posterior(batch) for batch in pixels.split(self.batch_size)])

    def _posterior(self, pixels):
        posterior = self._vae.encode(pixels)['latent_dist']
        return torch.cat([posterior.mean, posterior.std], dim=1)

    def encode_latents(self, raw, generator=None, mean_only=False):
        mean, std = raw.to(torch.float32).chunk(2, dim=1)
        z = mean if mean_only else mean + _normal_like(mean, generator) * std
        return z * self._constant(self.scale, z) + self._constant(self.bias, z)

    def decode(self, latents):
        self.init(latents.device)
        z = latents.to(torch.float32)
        z = (z - self._constant(self.bias, z)) / self._constant(self.scale, z)
        pixels = torch.cat([self._vae.decode(batch)['sample'] for batch in z.split(self.batch_size)])
        return pixels.clamp(0, 1).mul(255).to(torch.uint8)

    @staticmethod
    def _constant(values, like):
        """Per-channel constants as a [1, C, 1, 1] float32 tensor on like's device."""
        return torch.as_tensor(values, dtype=torch.float32, device=like.device).reshape(1, -1, 1, 1)


def _normal_like(x, generator):
    """Standard normal noise shaped like x, from `generator` (None: torch's global generator, as NVlabs)."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
