"""How the generate engine presents a loaded network to the samplers.

Batch-size invariance: CPU float32 conv/matmul kernels pick different code paths for different batch sizes, so
NVlabs' images differ by up to ~2e-4 between batch compositions (edm-format.md §3.4) and a pixel near a rounding
boundary can flip. On CPU every network call is therefore made one sample at a time (tile 1): the denoiser output
of a sample is then a function of that sample alone, the float64 sampler arithmetic is elementwise, and the PNG
for a seed is byte-identical for any --batch and any number of processes. Per-sample calls cost ~4% on CPU
(perf.md §2: 0.225 s at batch 1 vs 0.217 s per image at batch 8 for CIFAR-10). On CUDA the whole batch goes in
one call, as in NVlabs.

MPS has no float64: the sampler state stays on the CPU (CPU random streams, so the images match --device cpu up
to the network's float32 differences) and only the network runs on the MPS device.
"""

import torch

from edm_bdia.speed.tiling import call_in_tiles


def sampler_device(device):
    """Where latents, random draws and the float64 sampler state live for a given compute device."""
    return torch.device('cpu') if device.type == 'mps' else device


class SamplingNet:
    """Wraps `net` (already on `net_device`) for a sampler whose tensors live on `state_device`. Calls the network
    on tiles of `tile` samples (None: the whole batch) and forwards every other attribute to `net`."""

    def __init__(self, net, state_device, net_device, tile=None):
        self.net = net
        self.state_device = state_device
        self.net_device = net_device
        self.tile = tile

    def __getattr__(self, name):
        return getattr(self.net, name)

    def _to_net(self, value):
        if not torch.is_tensor(value) or self.net_device == self.state_device:
            return value
        if value.dtype == torch.float64:
            value = value.to(torch.float32)  # the EDM preconditioners cast to float32 first anyway
        return value.to(self.net_device)

    def _call(self, x, sigma, class_labels, kwargs):
        out = self.net(self._to_net(x), self._to_net(sigma), self._to_net(class_labels),
                       **{k: self._to_net(v) for k, v in kwargs.items()})
        return out.to(self.state_device)

    def __call__(self, x, sigma, class_labels=None, **kwargs):
        if self.tile is None:
            return self._call(x, sigma, class_labels, kwargs)
        return call_in_tiles(self._call, self.tile, x, sigma, class_labels, kwargs)

    def round_sigma(self, sigma):
        if self.net_device == self.state_device:
            return self.net.round_sigma(sigma)
        rounded = self.net.round_sigma(self._to_net(torch.as_tensor(sigma, device=self.state_device)))
        return rounded.to(device=self.state_device, dtype=torch.as_tensor(sigma).dtype)


def sampling_net(net, device):
    """The adapter the generate engine uses on `device`: per-sample calls on CPU and MPS, whole batches on CUDA.
    A network accelerated by `edm_bdia.speed` (a non-reference mode) gets whole batches and tiles them itself."""
    accelerated = getattr(getattr(net, 'plan', None), 'mode', 'reference') != 'reference'
    tile = None if device.type == 'cuda' or accelerated else 1
    return SamplingNet(net, sampler_device(device), device, tile)
