"""`edit_images`: the edit job, inverted images regenerated under target classes as PNG files, sharded and
resumable like generation (edm_bdia.runs). Its input is a latents file of `invert_images` (made by the same
network; its settings and tile are used) or images inverted here."""

import dataclasses
import os
import time

import numpy as np
import torch

import edm_bdia
from edm_bdia import distributed
from edm_bdia.editing.latents import Latents, check_latents_fit, read_latents
from edm_bdia.editing.round_trip import (EditSettings, callback_counts, open_guide, replay_plan, round_trip_plan,
                                         use_exact_arithmetic)
from edm_bdia.editing.sources import ImageSource, class_indices, one_hot
from edm_bdia.errors import ArgumentError
from edm_bdia.files.images import to_hwc_arrays
from edm_bdia.runs.folder import claimed, prepare_folder
from edm_bdia.runs.images import check_finite, check_pixels, to_pixels
from edm_bdia.runs.lockstep import LockstepBatches, progress_callback
from edm_bdia.runs.runtime import open_runtime
from edm_bdia.runs.writer import ImageWriter
from edm_bdia.sample import BDIAPair, bdia_edit, bdia_sample
from edm_bdia.samplers.checks import check_positive_integer


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every batch of one edit run shares: the network, the input (start pairs of a latents file, or images
    with their classes), the classes to regenerate under, the resolved sampler settings, the output folder."""
    net: object
    gnet: object  # the guiding network's adapter, or None
    encoder: object  # the snapshot's encoder (EDM2), or None
    state_device: torch.device
    pairs: Latents | None
    images: ImageSource | None
    sources: np.ndarray | None
    targets: np.ndarray | None
    names: list
    resolved: dict
    sigmas: torch.Tensor
    outdir: str
    resume: bool


def _target_indices(net, target_class, source_indices, count):
    """The class every edited image is regenerated under: `target_class`, else its own (a reconstruction)."""
    if not net.label_dim:
        if target_class is not None:
            raise ArgumentError('target_class', f'is {target_class}, but the network is unconditional; drop it')
        return None
    if target_class is not None:
        if not 0 <= target_class < net.label_dim:
            raise ArgumentError('target_class', f'is {target_class}, but the network has {net.label_dim} classes '
                                                f'(0 to {net.label_dim - 1})')
        return np.full(count, target_class, dtype=np.int64)
    return source_indices


def _edited(job, rows, advance):
    """Float64 images of `rows`, regenerated under their target classes; `advance(fraction)` hears of the sampler's
    steps (of both the encoding and the regeneration for images)."""
    settings = job.resolved
    encoding, regeneration = callback_counts(settings)
    target = one_hot(job.net, None if job.targets is None else job.targets[rows], job.state_device)
    with torch.no_grad():
        if job.pairs is not None:
            start = BDIAPair(settings['start_step'], torch.as_tensor(job.pairs.x_start[rows]).to(job.state_device),
                             torch.as_tensor(job.pairs.x_next[rows]).to(job.state_device))
            return bdia_sample(job.net, start, target, sigmas=job.sigmas, gamma=settings['gamma'],
                               base=settings['base'], gnet=job.gnet, guidance=settings['guidance'],
                               callback=progress_callback(advance, regeneration)).images
        source = one_hot(job.net, None if job.sources is None else job.sources[rows], job.state_device)
        images = job.images.batch(rows, job.net.img_channels, job.state_device, job.encoder)
        return bdia_edit(job.net, images, source, target, sigmas=job.sigmas, gamma=settings['gamma'],
                         base=settings['base'], strength=settings['strength'], gnet=job.gnet,
                         guidance=settings['guidance'],
                         callback=progress_callback(advance, encoding + regeneration)).images


def _edit_batch(job, writer, rows, advance):
    """Edit the batch (unless resume finds all its PNGs) and queue its PNGs on `writer`; its uint8 NCHW images,
    None when resumed. `advance(fraction)` hears of the sampler's steps."""
    paths = [os.path.join(job.outdir, f'{index:06d}.png') for index in rows]
    todo = [i for i, path in enumerate(paths) if not (job.resume and os.path.exists(path))]
    if not todo:
        return None
    edited = _edited(job, rows, advance)
    check_finite(edited, [job.names[i] for i in rows])
    images = to_pixels(edited, job.encoder)
    arrays = to_hwc_arrays(images)
    for i in todo:
        writer.submit(arrays[i], paths[i])
    return images


def _check_guide_fits(pairs, path, guide):
    """The guiding network given is the one the latents were inverted with (by sha256), or none for none."""
    recorded = pairs.settings.get('gnet')
    if recorded is None and guide is not None:
        raise ArgumentError('gnet', f'was given, but {path} was inverted without guidance; drop it')
    if recorded is not None and (guide is None or guide.opened.sha256 != recorded['sha256']):
        raise ArgumentError('gnet', f'must be the guiding network {path} was inverted with ({recorded["source"]}, '
                                    f'sha256 {recorded["sha256"][:12]}...); give that network')


def edit_images(network, outdir, *, latents=None, images=None, source_class=None, target_class=None,
                settings=EditSettings(), gnet=None, max_batch_size=64, device='auto', tile=None,
                trust_pickle_code=False, resume=False, progress=False):
    """Regenerate images under `target_class` and write them as `outdir/{index:06d}.png`; yields each batch's uint8
    NCHW images.

    From `latents` (a file of `invert_images`, made by this network: its settings are used) or from `images` (a
    folder, .zip or .npz, inverted here with `settings`, SDEdit-style for a strength < 1; `source_class` as
    `class_idx` of `invert_images`). Without `target_class` each image keeps its class: the images come back.
    `tile` as in `invert_images`; with `latents`, the tile recorded there is used. gnet: the guiding network (with
    `latents`: the one they were inverted with; with `images`: when `settings.guidance` is not 1). progress: rank 0
    shows a bar that follows the sampler's steps within each batch (the encoding's, then the regeneration's), and
    prints a summary.
    """
    started = time.perf_counter()
    check_positive_integer(max_batch_size, 'max_batch_size')
    if (latents is None) == (images is None):
        raise ArgumentError('latents', 'or `images` is needed, not both: a latents file from invert, or images')
    if latents is not None and tile is not None:
        raise ArgumentError('tile', 'comes from the latents file (the tile of its inversion, so that the calls '
                                    'repeat); drop it')

    device = distributed.init(device)
    pairs = source = None
    with distributed.all_ranks():
        if latents is not None:
            pairs = read_latents(latents)
            plan = replay_plan(device, pairs.settings)
        else:
            source = ImageSource(images)
            source.check_apart_from(outdir, 'outdir')
            plan = round_trip_plan(device, tile, len(source))
    runtime = open_runtime(network, device, plan, trust_pickle_code=trust_pickle_code)
    net = runtime.opened.net
    use_exact_arithmetic(net)
    guide = open_guide(gnet, device, plan, trust_pickle_code)
    with distributed.all_ranks():
        check_pixels(net, runtime.opened.encoder)
        if pairs is not None:
            check_latents_fit(pairs, latents, net, runtime.opened.sha256)
            _check_guide_fits(pairs, latents, guide)
            sources = None if pairs.labels.min() < 0 else pairs.labels
            resolved = {key: pairs.settings[key] for key in ('sigmas', 'start_step', 'gamma', 'base', 'strength')}
            resolved['guidance'] = pairs.settings.get('guidance', 1)
            names = pairs.names
        else:
            source.check_for(net, runtime.opened.encoder)
            sources = class_indices(net, source, range(len(source)), source_class, argument='source_class')
            resolved = dict(settings.resolve(net, None if guide is None else guide.opened.net),
                            guidance=settings.guidance)
            names = source.names
        targets = _target_indices(net, target_class, sources, len(names))
        runtime.check_batch_memory(len(names), max_batch_size)
    guiding = {} if guide is None else dict(gnet=dict(source=None, sha256=guide.opened.sha256),
                                            guidance=resolved['guidance'])
    manifest = dict(edm_bdia_version=edm_bdia.__version__, network=dict(source=None, sha256=runtime.opened.sha256),
                    **guiding, source=os.path.abspath(latents if latents is not None else images),
                    target_class=target_class, source_class=source_class, sigmas=resolved['sigmas'],
                    start_step=resolved['start_step'], tile=runtime.net.plan.tile, gamma=resolved['gamma'],
                    base=resolved['base'], strength=resolved['strength'])

    fresh = prepare_folder(outdir)
    job = _Job(net=runtime.net, gnet=None if guide is None else guide.net, encoder=runtime.opened.encoder,
               state_device=runtime.state_device,
               pairs=pairs, images=source, sources=sources,
               targets=targets, names=names, resolved=resolved,
               sigmas=torch.tensor(resolved['sigmas'], dtype=torch.float64, device=runtime.state_device),
               outdir=outdir, resume=resume)
    with claimed(outdir, manifest, fresh=fresh, resume=resume):
        with ImageWriter() as writer:
            batches = LockstepBatches(range(len(names)), max_batch_size, progress=progress)
            for rows in batches:
                with distributed.all_ranks():
                    edited = _edit_batch(job, writer, rows, batches.advance) if rows else None
                if edited is not None:
                    yield edited
            with distributed.all_ranks():
                writer.close()
    if progress:
        distributed.print0(f'Done: {len(names)} images in {outdir} ({time.perf_counter() - started:.1f} s).')
