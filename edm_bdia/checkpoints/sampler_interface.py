"""The noise-range interface edm_bdia's samplers read from a network (`sigma_min`, `sigma_max`, `round_sigma`), for
networks whose code lacks it: NVlabs' own EDM2 `Precond`, loaded with trust_pickle_code=True (docs/checkpoints.md,
'Trusted loading'). edm_bdia's EDM2 `Precond` has the interface itself."""

import torch

INTERFACE = ('sigma_min', 'sigma_max', 'round_sigma')


class ContinuousNoiseLevels(torch.nn.Module):
    """`net` with continuous noise levels: sigma_min 0, sigma_max inf, round_sigma the identity (a tensor), as
    EDM's preconditioners define them. Calls and every other attribute (img_resolution, unet, ...) are `net`'s."""

    sigma_min = 0
    sigma_max = float('inf')

    def __init__(self, net):
        super().__init__()
        self.net = net

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get('_modules', {})
            if name.startswith('_') or 'net' not in modules:
                raise
            return getattr(modules['net'], name)

    def round_sigma(self, sigma):
        """The identity, as a tensor of the argument's dtype."""
        return torch.as_tensor(sigma)

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)


def with_noise_interface(net):
    """`net` itself when it has the noise-range interface, else `ContinuousNoiseLevels(net)`."""
    return net if all(hasattr(net, name) for name in INTERFACE) else ContinuousNoiseLevels(net)
