"""`invert_images`: the invert job, real images to their BDIA start pairs in one latents file, sharded and
resumable like generation (edm_bdia.runs)."""

import dataclasses
import os
import shutil
import time

import numpy as np
import torch

import edm_bdia
from edm_bdia import distributed
from edm_bdia.editing.latents import FORMAT, Latents, write_latents
from edm_bdia.editing.round_trip import (EditSettings, callback_counts, guide_record, open_guide, round_trip_plan,
                                         use_exact_arithmetic)
from edm_bdia.editing.sources import ImageSource, class_indices, one_hot
from edm_bdia.files import atomic_write, check_writable_file
from edm_bdia.runs.folder import claimed, prepare_folder
from edm_bdia.runs.images import check_finite, check_pixels
from edm_bdia.runs.lockstep import LockstepBatches, progress_callback
from edm_bdia.runs.runtime import open_runtime
from edm_bdia.sample import bdia_encode
from edm_bdia.samplers.checks import check_positive_integer


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every batch of one invert run shares."""
    net: object
    gnet: object  # the guiding network's adapter, or None
    encoder: object  # the snapshot's encoder (EDM2), or None
    state_device: torch.device
    source: ImageSource
    labels: np.ndarray | None
    settings: EditSettings
    sigmas: torch.Tensor
    encoding_callbacks: int  # the sampler callbacks of one batch (callback_counts)
    parts: str
    resume: bool


def _encoder_record(encoder):
    """What the latents file records of the snapshot's encoder (EDM2): its class and, for the VAE, which one;
    nothing for networks without one, so that those files stay as they were."""
    if encoder is None:
        return {}
    return dict(encoder=dict(name=type(encoder).__name__, vae=getattr(encoder, 'vae_name', None)))


def _part_path(parts, index):
    return os.path.join(parts, f'{index:06d}.npz')


def _invert_batch(job, indices, advance):
    """Write the start pair of each image of `indices` to its part file (unless resume finds them all).
    `advance(fraction)` hears of the sampler's steps."""
    if job.resume and all(os.path.exists(_part_path(job.parts, i)) for i in indices):
        return
    x = job.source.batch(indices, job.net.img_channels, job.state_device, job.encoder)
    class_labels = one_hot(job.net, None if job.labels is None else job.labels[indices], job.state_device)
    with torch.no_grad():
        start = bdia_encode(job.net, x, class_labels, sigmas=job.sigmas, gamma=job.settings.gamma,
                            base=job.settings.base, strength=job.settings.strength, gnet=job.gnet,
                            guidance=job.settings.guidance,
                            callback=progress_callback(advance, job.encoding_callbacks)).pair
    check_finite(start.x, [job.source.names[i] for i in indices])
    for row, index in enumerate(indices):
        pair = dict(x_start=start.x[row].cpu().numpy(), x_next=start.x_next[row].cpu().numpy())
        atomic_write(_part_path(job.parts, index), lambda f, pair=pair: np.savez(f, **pair))


def _join_parts(parts, out, source, labels, record):
    """Write the latents file `out` from the part files, then remove them."""
    pairs = [np.load(_part_path(parts, index)) for index in range(len(source))]
    latents = Latents(x_start=np.stack([pair['x_start'] for pair in pairs]),
                      x_next=np.stack([pair['x_next'] for pair in pairs]),
                      labels=np.full(len(source), -1, np.int64) if labels is None else labels,
                      names=source.names, settings=record)
    write_latents(out, latents)
    shutil.rmtree(parts)


def invert_images(network, images, out, *, class_idx=None, settings=EditSettings(), gnet=None, max_batch_size=64,
                  device='auto', tile=None, trust_pickle_code=False, resume=False, progress=False):
    """Invert the images of `images` (a folder, .zip or generate.py .npz) into BDIA start pairs and write them to
    the latents file `out`; yields each batch's image indices as they are done.

    class_idx: the class of every image (conditional networks), else the .npz's labels. settings: the invertible
    sampler (EditSettings); gnet: the guiding network when `settings.guidance` is not 1 (as `network`; the latents
    file records its sha256). tile: samples per network call (default: 8 on CPU/MPS, at most the number of images;
    the batch on CUDA); the latents file records it for `edit_images`. Each image's pair is first written to
    `<out>.parts/` (crash-safe), so `resume` continues a killed run with any batch size or number of processes;
    rank 0 joins the parts into `out` at the end and removes the folder. progress: rank 0 shows a bar that follows
    the sampler's steps within each batch, and prints a summary.
    """
    started = time.perf_counter()
    check_positive_integer(max_batch_size, 'max_batch_size')
    parts = os.fspath(out) + '.parts'

    device = distributed.init(device)
    with distributed.all_ranks():
        source = ImageSource(images)
        source.check_apart_from(out, 'out')
        plan = round_trip_plan(device, tile, len(source))
    runtime = open_runtime(network, device, plan, trust_pickle_code=trust_pickle_code)
    use_exact_arithmetic(runtime.opened.net)
    guide = open_guide(gnet, device, plan, trust_pickle_code)
    with distributed.all_ranks():
        check_pixels(runtime.opened.net, runtime.opened.encoder)
        runtime.check_batch_memory(len(source), max_batch_size)
        source.check_for(runtime.opened.net, runtime.opened.encoder)
        labels = class_indices(runtime.opened.net, source, range(len(source)), class_idx)
        resolved = settings.resolve(runtime.opened.net, None if guide is None else guide.opened.net)
    record = dict(format=FORMAT, edm_bdia_version=edm_bdia.__version__, images=os.path.abspath(source.path),
                  network=dict(source=runtime.opened.label, sha256=runtime.opened.sha256), **guide_record(guide),
                  **_encoder_record(runtime.opened.encoder), class_idx=class_idx, tile=runtime.net.plan.tile,
                  **resolved)

    with distributed.all_ranks():
        check_writable_file(out, 'out')
    fresh = prepare_folder(parts, argument='out')
    job = _Job(net=runtime.net, gnet=None if guide is None else guide.net, encoder=runtime.opened.encoder,
               state_device=runtime.state_device,
               source=source, labels=labels, settings=settings,
               sigmas=torch.tensor(resolved['sigmas'], dtype=torch.float64, device=runtime.state_device),
               encoding_callbacks=callback_counts(resolved)[0], parts=parts, resume=resume)
    parts_manifest = dict(record, network=dict(record['network'], source=None))  # a path may be spelled otherwise
    if guide is not None:
        parts_manifest['gnet'] = dict(record['gnet'], source=None)
    with claimed(parts, parts_manifest, fresh=fresh, resume=resume, suffix='.npz', argument='out'):
        batches = LockstepBatches(range(len(source)), max_batch_size, progress=progress)
        for indices in batches:
            with distributed.all_ranks():
                if indices:
                    _invert_batch(job, indices, batches.advance)
            if indices:
                yield indices
        with distributed.all_ranks():
            if distributed.get_rank() == 0:
                _join_parts(parts, out, source, labels, record)
    if progress:
        distributed.print0(f'Done: {len(source)} images inverted to {out} ({time.perf_counter() - started:.1f} s).')
