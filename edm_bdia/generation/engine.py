"""`generate_images`: the generation engine as a library generator, NVlabs-compatible, sharded and resumable.

Per seed the engine draws exactly what NVlabs' generate.py draws (float32 latents, then a class label for a
conditional network, then the sampler's noise), batches seeds over ranks as NVlabs does, quantises as NVlabs does
and names files as NVlabs does, so the same settings give the same PNG files. It adds: a lazy seed list, one
network adapter under one speed plan, crash-safe PNG writes on background threads, a manifest that refuses to mix
settings in one folder, resume, and failures reported on every rank instead of a hang.

From a notebook::

    for batch in generate_images('edm-cifar10-32x32-cond-vp', range(16), device='cpu'):
        show(batch.images)  # uint8 NCHW
"""

import contextlib
import dataclasses
import os

import torch

import edm_bdia
from edm_bdia import distributed
from edm_bdia.errors import ArgumentError
from edm_bdia.files.images import to_hwc_arrays, to_uint8
from edm_bdia.generation.inputs import batch_inputs
from edm_bdia.generation.manifest import claim_outdir, make_manifest
from edm_bdia.generation.runtime import lockstep_batches, open_runtime
from edm_bdia.generation.outputs import (check_finite, check_outputs, claimed, has_png, read_images,
                                         write_collections)
from edm_bdia.generation.sampler import SamplerSettings, choose_sampler
from edm_bdia.generation.seeds import as_seeds, image_path
from edm_bdia.generation.writer import ImageWriter


@dataclasses.dataclass
class GeneratedBatch:
    """One batch of this rank: its seeds, the images as uint8 NCHW, the class index of each image (None for an
    unconditional network) and whether the images were read back from existing PNGs (resume)."""
    seeds: list
    images: torch.Tensor
    class_indices: torch.Tensor | None
    resumed: bool


@dataclasses.dataclass
class _Run:
    """What every batch of one run shares."""
    net: object
    state_device: torch.device
    sampler: SamplerSettings
    class_idx: int | None
    outdir: str | None
    subdirs: bool
    resume: bool
    writer: ImageWriter | None


def check_network(net, class_idx):
    """A network the engine can make PNGs with, and a class index it has; ValueError otherwise."""
    if net.img_channels not in (1, 3):
        raise ArgumentError('network', f'makes {net.img_channels}-channel images; PNG output supports 1 (grayscale) '
                                       'or 3 (RGB) channels')
    if class_idx is not None and not net.label_dim:
        raise ArgumentError('class_idx', f'is {class_idx}, but the network is unconditional (label_dim = 0); drop it')
    if class_idx is not None and not 0 <= class_idx < net.label_dim:
        raise ArgumentError('class_idx', f'is {class_idx}, but the network has {net.label_dim} classes '
                                         f'(0 to {net.label_dim - 1})')


def _sample_batch(run, seeds):
    """uint8 NCHW images (and class indices) for `seeds`; NonFiniteImagesError names the seeds that failed."""
    rnd, latents, class_labels = batch_inputs(run.net, seeds, run.state_device, run.class_idx)
    with torch.no_grad():
        images = run.sampler.sample(run.net, latents, class_labels, rnd.randn_like)
    check_finite(images, [f'seed {seed}' for seed in seeds])
    indices = class_labels.argmax(dim=1).cpu() if class_labels is not None else None
    return to_uint8(images), indices


def _process_batch(run, seeds):
    """Sample the batch (unless resume finds all its PNGs), queue its PNGs; return its GeneratedBatch."""
    paths = [image_path(run.outdir, seed, run.subdirs) for seed in seeds] if run.outdir else []
    todo = [i for i, path in enumerate(paths) if not (run.resume and os.path.exists(path))]
    if paths and not todo:  # resumed: the images are the PNGs already on disk
        images = torch.as_tensor(read_images(run.outdir, seeds, run.subdirs)).permute(0, 3, 1, 2)
        _, _, class_labels = batch_inputs(run.net, seeds, run.state_device, run.class_idx)
        indices = class_labels.argmax(dim=1).cpu() if class_labels is not None else None
        return GeneratedBatch(list(seeds), images, indices, resumed=True)
    images, indices = _sample_batch(run, seeds)
    if run.writer is not None:  # a partly done batch is sampled whole: its images match an uninterrupted run
        arrays = to_hwc_arrays(images)
        for i in todo:
            run.writer.submit(arrays[i], paths[i])
    return GeneratedBatch(list(seeds), images, indices, resumed=False)


def generate_images(network, seeds, *, sampler=None, class_idx=None, max_batch_size=64, device='auto',
                    speed='reference', outdir=None, subdirs=False, resume=False, grid=None, npz=None,
                    trust_pickle_code=False, consume=None, progress=False):
    """Generate the images of `seeds`, batch by batch, yielding a GeneratedBatch for each batch of this rank.

    network: a preset name, path or URL of an NVlabs pickle, the built-in model's name, or a loaded network.
    seeds: a `--seeds` string ('0-63', '1,5,10-19'), a range or a sequence of integers.
    sampler: a SamplerSettings (`choose_sampler(...)`); default EDM's deterministic Heun sampler, 18 steps.
    class_idx: one class for every image (conditional networks), else each seed draws its own.
    max_batch_size, device ('auto', 'cpu', 'cuda', 'mps'), speed (a mode name or a SpeedPlan).
    outdir: write `{seed:06d}.png` there (atomically, in the background), record the settings in its manifest
    and, with `resume`, skip seeds whose PNG exists. subdirs: one subfolder per 1000 seeds (NVlabs).
    grid, npz: at the end, also write a grid PNG of the first 64 images and / or all images as an OpenAI-style npz
    (read back from the PNGs, so a resumed run writes the same files); their paths are checked first.
    consume: called with each GeneratedBatch inside the run's failure handling, so that under torchrun an error
    in it stops every rank (e.g. a streaming FID's `update`).
    Under torchrun / srun the seeds are split over the processes as NVlabs splits them; every rank must
    iterate to the end.
    """
    seeds = as_seeds(seeds)
    sampler = sampler if sampler is not None else choose_sampler()
    if (grid or npz) and outdir is None:
        raise ArgumentError('outdir', 'is needed for `grid` and `npz`, which are made from the PNG files')
    fresh = outdir is not None and not os.path.exists(outdir)  # a run that fails early removes it again
    runtime = open_runtime(network, device=device, speed=speed, trust_pickle_code=trust_pickle_code,
                           check=lambda net: (check_network(net, class_idx), sampler.check(net)))
    if outdir is not None:
        distributed.attempt(lambda: check_outputs(outdir, grid, npz))
        manifest = distributed.on_rank_zero(lambda: make_manifest(
            version=edm_bdia.__version__, network_source=runtime.opened.label, network_sha256=runtime.opened.sha256,
            sampler=sampler.record()[0], sampler_kwargs=sampler.record()[1], class_idx=class_idx, subdirs=subdirs,
            device_type=runtime.device.type, speed=runtime.net.plan.record()))

    with claimed(outdir, lambda: claim_outdir(outdir, manifest, resume, has_png(outdir)), fresh):
        with ImageWriter() if outdir is not None else contextlib.nullcontext() as writer:
            run = _Run(net=runtime.net, state_device=runtime.state_device, sampler=sampler, class_idx=class_idx,
                       outdir=outdir, subdirs=subdirs, resume=resume, writer=writer)
            yield from lockstep_batches(seeds, max_batch_size, lambda batch: _process_batch(run, batch),
                                        consume=consume, progress=progress)
            if writer is not None:
                distributed.attempt(writer.close)
        if grid or npz:
            distributed.on_rank_zero(lambda: write_collections(outdir, seeds, subdirs, grid, npz,
                                                               runtime.opened.net, runtime.state_device, class_idx))


