"""`generate_images`: the generate job, a library generator, NVlabs-compatible, sharded and resumable.

Per seed the job draws exactly what NVlabs' generate.py draws (float32 latents, then a class label for a
conditional network, then the sampler's noise), batches seeds over ranks as NVlabs does, quantises as NVlabs does
and names files as NVlabs does, so the same settings give the same PNG files. It adds: a lazy seed list, one
network adapter under one speed plan, crash-safe PNG writes on background threads, a manifest that refuses to mix
settings in one folder, resume, and failures reported on every rank instead of a hang (edm_bdia.runs).

From a notebook::

    for batch in generate_images('edm-cifar10-32x32-cond-vp', range(16), device='cpu'):
        show(batch.images)  # uint8 NCHW
"""

import contextlib
import dataclasses
import inspect
import numbers
import os
import time
import warnings

import torch

import edm_bdia
from edm_bdia import distributed
from edm_bdia.errors import ArgumentError
from edm_bdia.files.images import to_hwc_arrays
from edm_bdia.generation.collections import check_collection_paths, read_images, write_collections
from edm_bdia.generation.inputs import batch_inputs
from edm_bdia.generation.padding import padding_note
from edm_bdia.generation.sampler import check_sampler, choose_sampler, noise_argument
from edm_bdia.generation.seeds import as_seeds, image_path
from edm_bdia.runs.folder import claimed, prepare_folder
from edm_bdia.runs.images import check_finite, check_pixels, to_pixels
from edm_bdia.runs.lockstep import LockstepBatches, progress_callback
from edm_bdia.runs.manifest import jsonable
from edm_bdia.runs.runtime import open_runtime
from edm_bdia.runs.writer import ImageWriter
from edm_bdia.samplers.checks import check_positive_integer
from edm_bdia.speed import SpeedPlan, make_plan


@dataclasses.dataclass
class GeneratedBatch:
    """One batch of this rank: its seeds, the images as uint8 NCHW, the class index of each image (None for an
    unconditional network) and whether the images were read back from existing PNGs (resume)."""
    seeds: list
    images: torch.Tensor
    class_indices: torch.Tensor | None
    resumed: bool


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every batch of one generate run shares."""
    net: object
    state_device: torch.device
    sampler_fn: object
    sampler_kwargs: dict
    gnet: object  # the guiding network's speed adapter, passed to the sampler as `gnet`; None: no guiding network
    encoder: object  # the snapshot's encoder (edm_bdia.runs.images.to_pixels), or None
    class_idx: int | None
    outdir: str | None
    subdirs: bool
    resume: bool


def check_network(net, encoder, class_idx):
    """A network the job can make PNGs with (directly or through its snapshot's `encoder`), and a class index it
    has; ValueError otherwise."""
    if class_idx is not None and (isinstance(class_idx, bool) or not isinstance(class_idx, numbers.Integral)):
        raise ArgumentError('class_idx', f'must be an integer class index (or None), got {class_idx!r}')
    check_pixels(net, encoder)
    if class_idx is not None and not net.label_dim:
        raise ArgumentError('class_idx', f'is {class_idx}, but the network is unconditional (label_dim = 0); drop it')
    if class_idx is not None and not 0 <= class_idx < net.label_dim:
        raise ArgumentError('class_idx', f'is {class_idx}, but the network has {net.label_dim} classes '
                                         f'(0 to {net.label_dim - 1})')


def speed_plan(speed, device, *, tile=None, compile=False, cuda_graphs=False):
    """The SpeedPlan of a run: `speed` itself if it is one, else the plan of mode `speed` on `device`, with
    batch-size invariance on CPU/MPS (a fixed tile; `tile` samples per call if given)."""
    if isinstance(speed, SpeedPlan):
        for name, value in (('tile', tile), ('compile', compile), ('cuda_graphs', cuda_graphs)):
            if value:
                raise ArgumentError(name, 'is part of the SpeedPlan given as `speed`; drop it, or give `speed` as a '
                                          'mode name')
        return speed
    return make_plan(speed, device, tile=tile, batch_invariant=True, compile=compile, cuda_graphs=cuda_graphs)


def _step_progress(job, advance):
    """{'callback': ...} reporting the share of the sampler's steps done to `advance`, for a sampler that takes a
    callback the caller did not set; else {}."""
    parameters = inspect.signature(job.sampler_fn).parameters
    if 'callback' not in parameters or 'callback' in job.sampler_kwargs or 'num_steps' not in parameters:
        return {}
    num_steps = job.sampler_kwargs.get('num_steps', parameters['num_steps'].default)
    return dict(callback=progress_callback(advance, num_steps))


def _sample_batch(job, seeds, advance):
    """uint8 NCHW images (and class indices) for `seeds`; NonFiniteImagesError names the seeds that failed.
    `advance(fraction)` hears of the sampler's steps."""
    rnd, latents, class_labels = batch_inputs(job.net, seeds, job.state_device, job.class_idx)
    with torch.no_grad():
        guide = {} if job.gnet is None else dict(gnet=job.gnet)
        images = job.sampler_fn(job.net, latents, class_labels, **noise_argument(job.sampler_fn, job.sampler_kwargs,
                                                                                 rnd.randn_like), **guide,
                                **_step_progress(job, advance), **job.sampler_kwargs)
    check_finite(images, [f'seed {seed}' for seed in seeds])
    indices = class_labels.argmax(dim=1).cpu() if class_labels is not None else None
    return to_pixels(images, job.encoder), indices


def _generate_batch(job, writer, seeds, advance):
    """Sample the batch (unless resume finds all its PNGs), queue its PNGs on `writer`; return its GeneratedBatch."""
    paths = [image_path(job.outdir, seed, job.subdirs) for seed in seeds] if job.outdir else []
    todo = [i for i, path in enumerate(paths) if not (job.resume and os.path.exists(path))]
    if paths and not todo:  # resumed: the images are the PNGs already on disk
        images = torch.as_tensor(read_images(job.outdir, seeds, job.subdirs)).permute(0, 3, 1, 2)
        _, _, class_labels = batch_inputs(job.net, seeds, job.state_device, job.class_idx)
        indices = class_labels.argmax(dim=1).cpu() if class_labels is not None else None
        return GeneratedBatch(seeds, images, indices, resumed=True)
    images, indices = _sample_batch(job, seeds, advance)
    if writer is not None:  # a partly done batch is sampled whole: its images match an uninterrupted run
        arrays = to_hwc_arrays(images)
        for i in todo:
            writer.submit(arrays[i], paths[i])
    return GeneratedBatch(seeds, images, indices, resumed=False)


def _manifest(runtime, guide, sampler_fn, sampler_kwargs, class_idx, subdirs):
    """What determines the images of a generate run (edm_bdia.runs.manifest); the guiding network's identity only
    when there is one, so that the manifests of unguided runs stay as they were."""
    guiding = {} if guide is None else dict(gnet=dict(source=guide.opened.label, sha256=guide.opened.sha256))
    return jsonable(dict(
        edm_bdia_version=edm_bdia.__version__,
        network=dict(source=runtime.opened.label, sha256=runtime.opened.sha256),
        sampler=sampler_fn.__name__,
        sampler_kwargs=dict(sorted(sampler_kwargs.items())),
        **guiding,
        class_idx=class_idx,
        subdirs=subdirs,
        device_type=runtime.device.type,
        speed=runtime.net.plan.record(),
    ))


def generate_images(network, seeds, *, sampler_fn=None, gnet=None, class_idx=None, max_batch_size=64, device='auto',
                    speed='reference', tile=None, compile=False, cuda_graphs=False, outdir=None, subdirs=False,
                    resume=False, grid=None, npz=None, trust_pickle_code=False, consume=None, progress=False,
                    **sampler_kwargs):
    """Generate the images of `seeds`, batch by batch, yielding a GeneratedBatch for each batch of this rank.

    network: a preset name, path or URL of an NVlabs pickle, the built-in model's name, or a loaded network.
    seeds: a `--seeds` string ('0-63', '1,5,10-19'), a range or a sequence of integers.
    sampler_fn, **sampler_kwargs: the sampler, called as `sampler_fn(net, latents, class_labels, **sampler_kwargs)`
    (plus the per-seed `randn_like` where it draws), e.g. `sampler_fn=edm_sampler, num_steps=32`. Without
    `sampler_fn`, sampler_kwargs are generate.py's sampler options, routed as generate.py routes them
    (`choose_sampler`): by default EDM's deterministic Heun sampler, 18 steps.
    gnet: a guiding network (as `network`), opened like it and passed to the sampler as `gnet`; the weight is the
    sampler's `guidance` argument (edm_bdia.samplers.guidance).
    class_idx: one class for every image (conditional networks), else each seed draws its own.
    max_batch_size, device ('auto', 'cpu', 'cuda', 'mps').
    speed, tile, compile, cuda_graphs: the speed plan, made once the process group is joined: a mode name
    ('reference', 'fast', 'bf16', 'fp16', 'auto') with batch-size invariance on CPU/MPS, `tile` samples per network
    call (default: the mode's), torch.compile, CUDA graphs; or a ready SpeedPlan as `speed`.
    outdir: write `{seed:06d}.png` there (atomically, in the background), record the settings in its manifest
    and, with `resume`, skip seeds whose PNG exists. subdirs: one subfolder per 1000 seeds (NVlabs).
    grid, npz: at the end, also write a grid PNG of the first 64 images and / or all images as an OpenAI-style npz
    (read back from the PNGs, so a resumed run writes the same files); their paths are checked first.
    consume: called with each GeneratedBatch inside the batch's failure handling, so that under torchrun an error
    in it stops every rank (e.g. a streaming FID's `update`).
    progress: rank 0 prints what it generates, a progress bar that follows the sampler's steps, and a summary.
    Under torchrun / srun the seeds are split over the processes as NVlabs splits them; every rank must
    iterate to the end. An ArgumentNote warns when fixed tiles would make much of the network's work padding.
    """
    started = time.perf_counter()
    seeds = as_seeds(seeds)
    check_positive_integer(max_batch_size, 'max_batch_size')
    if sampler_fn is None:
        unknown = sorted(set(sampler_kwargs) - set(inspect.signature(choose_sampler).parameters))
        if unknown:
            raise ArgumentError(unknown[0], "is not one of generate.py's sampler options (choose_sampler); pass "
                                            'sampler_fn= and its keyword arguments instead')
        sampler_fn, sampler_kwargs = choose_sampler(**sampler_kwargs)
    if (grid or npz) and outdir is None:
        raise ArgumentError('outdir', 'is needed for `grid` and `npz`, which are made from the PNG files')

    device = distributed.init(device)
    with distributed.all_ranks():
        plan = speed_plan(speed, device, tile=tile, compile=compile, cuda_graphs=cuda_graphs)
    runtime = open_runtime(network, device, plan, trust_pickle_code=trust_pickle_code)
    guide = None if gnet is None else open_runtime(gnet, device, plan, trust_pickle_code=trust_pickle_code,
                                                   argument='gnet', uses_encoder=False)
    with distributed.all_ranks():
        runtime.check_batch_memory(len(seeds), max_batch_size)
        check_network(runtime.opened.net, runtime.opened.encoder, class_idx)
        check_sampler(runtime.opened.net, sampler_fn, sampler_kwargs, None if guide is None else guide.opened.net)
    if tile is None and not isinstance(speed, SpeedPlan):  # the mode's default tile: say if another pads less
        note = padding_note(plan.tile, len(seeds), max_batch_size, distributed.get_world_size())
        if note is not None:
            warnings.warn(note, stacklevel=2)

    manifest, fresh = None, False
    if outdir is not None:
        with distributed.all_ranks():
            check_collection_paths(outdir, grid, npz)
        fresh = prepare_folder(outdir)
        manifest = _manifest(runtime, guide, sampler_fn, sampler_kwargs, class_idx, subdirs)
    job = _Job(net=runtime.net, state_device=runtime.state_device, sampler_fn=sampler_fn,
               sampler_kwargs=sampler_kwargs, gnet=None if guide is None else guide.net,
               encoder=runtime.opened.encoder, class_idx=class_idx,
               outdir=outdir, subdirs=subdirs, resume=resume)
    if progress:
        distributed.print0(f'Generating {len(seeds)} images{f" to {outdir}" if outdir else ""} with '
                           f'{sampler_fn.__name__} from "{runtime.opened.label}" on {distributed.get_world_size()} '
                           f'process(es), device {device.type}...')

    with claimed(outdir, manifest, fresh=fresh, resume=resume):
        with ImageWriter() if outdir is not None else contextlib.nullcontext() as writer:
            batches = LockstepBatches(seeds, max_batch_size, progress=progress)
            for batch_seeds in batches:
                with distributed.all_ranks():
                    batch = _generate_batch(job, writer, batch_seeds, batches.advance) if batch_seeds else None
                    if batch is not None and consume is not None:
                        consume(batch)
                if batch is not None:
                    yield batch
            if writer is not None:
                with distributed.all_ranks():
                    writer.close()
        if grid or npz:
            with distributed.all_ranks():
                if distributed.get_rank() == 0:
                    write_collections(outdir, seeds, subdirs, grid, npz, runtime.opened.net, runtime.state_device,
                                      class_idx)
    if progress:
        distributed.print0(f'Done: {len(seeds)} images{f" in {outdir}" if outdir else ""} '
                           f'({time.perf_counter() - started:.1f} s).')
