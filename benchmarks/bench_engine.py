"""End-to-end runs through the generate engine (edm_bdia.generate's Job / run_batches: random streams, sampler,
uint8 conversion and PNG writing), with the time spent inside the network measured separately."""

import math
import time

import torch

from edm_bdia.distributed import all_batches
from edm_bdia.generation import sampler_choice
from edm_bdia.generation.network import SamplingNet, sampling_net
from edm_bdia.generation.writer import ImageWriter
from edm_bdia.generate import Job, run_batches
from edm_bdia.speed import AcceleratedNet

CPU = torch.device('cpu')


class TimedNet:
    """Forwards everything to `net`; accumulates the wall seconds and the number of calls spent in it."""

    def __init__(self, net):
        self.net = net
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name):
        if name == 'net':
            raise AttributeError(name)
        return getattr(self.net, name)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.net(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


class ZeroCostNet(torch.nn.Module):
    """A stand-in with the NVlabs interface whose denoiser is D(x) = x (float32): it costs ~nothing, so a run
    measures only what lies outside the network (random streams, sampler arithmetic, PNG writing)."""

    sigma_min = 0
    sigma_max = float('inf')

    def __init__(self, img_resolution=32, img_channels=3, label_dim=10):
        super().__init__()
        self.img_resolution, self.img_channels, self.label_dim = img_resolution, img_channels, label_dim

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)

    def forward(self, x, sigma, class_labels=None, **kwargs):
        return x.to(torch.float32)


def sampler_for(name, steps):
    """('edm' | 'bdia', steps) -> the engine's (name, function, kwargs), as `--steps N [--gamma 0.5]` selects."""
    options = dict(num_steps=steps, sigma_min=None, sigma_max=None, rho=7, S_churn=0, S_min=0, S_max=math.inf,
                   S_noise=1, gamma=0.5 if name == 'bdia' else 0.0)
    return sampler_choice.select_sampler(**options)


def nfe_per_image(steps):
    """Heun on every step but the last (Euler to t = 0): 2·steps − 1 network calls; BDIA-Heun makes the same."""
    return 2 * steps - 1


def engine_net(net):
    """How the engine presents `net` on the CPU: the reference path calls it per sample (network.sampling_net);
    an AcceleratedNet gets the whole user batch and tiles it itself."""
    if isinstance(net, AcceleratedNet) or (isinstance(net, TimedNet) and isinstance(net.net, AcceleratedNet)):
        return SamplingNet(net, CPU, CPU, tile=None)
    return sampling_net(net, CPU)


def run_engine(net, sampler, seeds, batch, outdir):
    """Generate PNGs for `seeds` in user batches of `batch` on one CPU process. Returns (wall, network) seconds."""
    timed = TimedNet(net)
    start = time.perf_counter()
    with ImageWriter() as writer:
        job = Job(engine_net(timed), CPU, sampler, None, outdir, False, False, writer, None)
        run_batches(job, all_batches(list(seeds), batch, 1), 0, 1)
    return time.perf_counter() - start, timed.seconds
