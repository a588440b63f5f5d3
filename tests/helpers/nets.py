"""Small test networks with the NVlabs interface, for the sampler tests."""

import torch


class TinyNonlinearNet(torch.nn.Module):
    """A nonlinear EDM-preconditioned denoiser: D = c_skip x + c_out tanh(conv(c_in x) + a(sigma) + label term).

    Weights are fixed by `seed`. `dtype` is the arithmetic inside the network (float32 like NVlabs' nets, or
    float64); the output is cast back to float64 by the samplers.
    """

    sigma_min = 0
    sigma_max = float('inf')

    def __init__(self, channels=3, resolution=8, label_dim=0, seed=0, dtype=torch.float64, sigma_data=0.5):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.img_channels, self.img_resolution, self.label_dim = channels, resolution, label_dim
        self.dtype, self.sigma_data = dtype, sigma_data
        self.weight = torch.nn.Parameter(torch.randn(channels, channels, 3, 3, generator=gen) * 0.4, requires_grad=False)
        self.noise_gain = torch.nn.Parameter(torch.randn(channels, generator=gen), requires_grad=False)
        self.label_gain = torch.nn.Parameter(torch.randn(max(label_dim, 1), channels, generator=gen), requires_grad=False)
        self.calls = 0

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)

    def forward(self, x, sigma, class_labels=None):
        self.calls += 1
        x = x.to(self.dtype)
        sigma = torch.as_tensor(sigma, dtype=self.dtype).reshape(-1, 1, 1, 1)
        sd = self.sigma_data
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        c_in = 1 / (sd ** 2 + sigma ** 2).sqrt()
        h = torch.nn.functional.conv2d(c_in * x, self.weight.to(self.dtype), padding=1)
        h = h + (sigma.log() / 4) * self.noise_gain.to(self.dtype).reshape(1, -1, 1, 1)
        if self.label_dim and class_labels is not None:
            h = h + (class_labels.to(self.dtype) @ self.label_gain.to(self.dtype))[:, :, None, None]
        return c_skip * x + c_out * torch.tanh(h)



def karras_restated(num_steps, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """EDM eq. 5 written out independently of edm_bdia (float64, then t_N = 0)."""
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    t = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)])


class NoisyNet(TinyNonlinearNet):
    """TinyNonlinearNet whose output carries `relative` random noise: a stand-in for non-deterministic kernels."""

    def __init__(self, relative=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.relative = relative
        self.noise = torch.Generator().manual_seed(123)

    def forward(self, x, sigma, class_labels=None):
        out = super().forward(x, sigma, class_labels)
        return out * (1 + self.relative * torch.randn(out.shape, generator=self.noise, dtype=out.dtype))


def tiny_edm_net(label_dim=0, resolution=8, seed=0):
    """A real edm_bdia EDMPrecond + DDPM++ (SongUNet) network with tiny random weights (for speed-mode tests)."""
    from edm_bdia.networks import EDMPrecond
    torch.manual_seed(seed)
    return EDMPrecond(img_resolution=resolution, img_channels=3, label_dim=label_dim, model_type='SongUNet',
                      model_channels=16, channel_mult=[1], num_blocks=1, attn_resolutions=[]).eval()


class CountingNet(torch.nn.Module):
    """`net` with the NVlabs interface, counting its evaluations in `calls` (a sampler's NFE)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.calls = 0
        for name in ('img_channels', 'img_resolution', 'label_dim', 'sigma_min', 'sigma_max'):
            setattr(self, name, getattr(net, name))

    def round_sigma(self, sigma):
        return self.net.round_sigma(sigma)

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.net(*args, **kwargs)
