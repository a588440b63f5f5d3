"""End-to-end runs through the generation engine (edm_bdia.generation.generate_images: random streams, sampler,
uint8 conversion and PNG writing), with the time spent inside the network measured separately."""

import time

import torch

from edm_bdia.generation import choose_sampler, generate_images
from edm_bdia.speed import AcceleratedNet, apply_plan, make_plan

from .metered_net import MeteredNet

CPU = torch.device('cpu')


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
    """('edm' | 'bdia', steps) -> the engine's (sampler_fn, sampler_kwargs), as `--steps N [--gamma 0.5 --bdia-base heun]`
    selects them: BDIA on EDM's Heun steps makes the same network calls as EDM (equal NFE)."""
    if name == 'bdia':
        return choose_sampler(num_steps=steps, gamma=0.5, bdia_base='heun')
    return choose_sampler(num_steps=steps)


def nfe_per_image(steps):
    """Heun on every step but the last (Euler to t = 0): 2·steps − 1 network calls; BDIA-Heun makes the same."""
    return 2 * steps - 1


def engine_net(net):
    """`net` as the engine runs it by default on the CPU: an AcceleratedNet keeps its own plan, any other network
    gets the default plan (the reference mode on fixed batch-invariant tiles)."""
    if isinstance(net, AcceleratedNet):
        return net
    return apply_plan(net, make_plan('reference', CPU, batch_invariant=True), CPU)


def run_engine(net, sampler, seeds, batch, outdir):
    """Generate PNGs (and the manifest) for `seeds` in user batches of `batch` on one CPU process, `net` run as
    `engine_net` says. Returns (wall, network) seconds."""
    timed = MeteredNet(engine_net(net))
    start = time.perf_counter()
    # the plan is already applied inside `timed`: the engine's own adapter passes each batch through whole
    sampler_fn, sampler_kwargs = sampler
    for _ in generate_images(timed, seeds, sampler_fn=sampler_fn, max_batch_size=batch, device=CPU,
                             speed=make_plan('reference', CPU), outdir=outdir, **sampler_kwargs):
        pass
    return time.perf_counter() - start, timed.seconds
