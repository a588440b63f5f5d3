"""Guidance (EDM2: Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself"): the sampled
denoiser is D_w = D_g + w (D - D_g), D the network, D_g a guiding network and w the guidance weight. D_g is an
unconditional network in classifier-free guidance, a smaller or less trained version of the network in autoguidance;
w = 1 is the network alone and never calls the guiding one.

Every sampler takes `gnet=` and `guidance=` and samples the guided denoiser as if it were one network. A round trip
replays both networks, so BDIA's inverse stays exact; exactness.py checks the arithmetic of both.
"""

import math
import numbers

from edm_bdia.errors import ArgumentError


class GuidedDenoiser:
    """`net` guided by `gnet` with weight `guidance`, with the NVlabs interface of `net` (shape, labels, noise
    range, rounding). `gnet` gets the class labels only when it is conditional."""

    def __init__(self, net, gnet, guidance):
        self.net = net
        self.gnet = gnet
        self.guidance = guidance

    def __getattr__(self, name):  # img_channels, img_resolution, label_dim, sigma_min, sigma_max, round_sigma, ...
        if name in ('net', 'gnet', 'guidance'):  # not set yet (copy, unpickle)
            raise AttributeError(name)
        return getattr(self.net, name)

    def networks(self):
        return self.net, self.gnet

    def __call__(self, x, sigma, class_labels=None, **kwargs):
        denoised = self.net(x, sigma, class_labels, **kwargs)
        guiding = self.gnet(x, sigma, class_labels if self.gnet.label_dim else None, **kwargs)
        # D_w = D_g + w (D - D_g), in the networks' output precision (EDM2 combines them so)
        return guiding.to(denoised.dtype).lerp(denoised, self.guidance)


def guided(net, gnet=None, guidance=1):
    """The denoiser a sampler samples: `net` when guidance is 1, else `GuidedDenoiser(net, gnet, guidance)`; one
    ValueError naming the argument for a guidance that is not a finite number, a missing `gnet` or a `gnet` of
    another image shape or label space."""
    if isinstance(guidance, bool) or not isinstance(guidance, numbers.Real) or not math.isfinite(guidance):
        raise ArgumentError('guidance', f'must be a finite number (1: no guidance), got {guidance!r}')
    if guidance == 1:
        return net
    if gnet is None:
        raise ArgumentError('gnet', f'is needed for guidance {guidance:g}: pass the guiding network (an unconditional '
                                    'one for classifier-free guidance, a weaker one for autoguidance), or guidance 1')
    shape = (net.img_channels, net.img_resolution)
    if (gnet.img_channels, gnet.img_resolution) != shape:
        raise ArgumentError('gnet', f'makes {gnet.img_channels}x{gnet.img_resolution}x{gnet.img_resolution} images, '
                                    f'the network {shape[0]}x{shape[1]}x{shape[1]}; guide with a network of the same '
                                    'image shape')
    if gnet.label_dim not in (0, net.label_dim):
        raise ArgumentError('gnet', f'has {gnet.label_dim} classes, the network {net.label_dim}; guide with an '
                                    'unconditional network or one of the same classes')
    return GuidedDenoiser(net, gnet, guidance)
