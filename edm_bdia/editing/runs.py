"""Sharded, resumable inversion and editing runs (`python -m edm_bdia invert | edit`).

Both use the generation engine's machinery: the network opened once (rank 0 first) under a batch-invariant
reference plan, batches in lockstep over the ranks, crash-safe files, a manifest that refuses mixed settings.
Exactness: a round trip replays every denoiser call of the other direction, so the network runs in float32 without
TF32 (and without a `use_fp16` network's half precision), on fixed tiles of samples (a call's result does not
depend on the batch), and its first call is checked to repeat bit for bit (edm_bdia.samplers.exactness).
"""

import dataclasses
import os
import shutil

import numpy as np
import torch

import edm_bdia
from edm_bdia import distributed
from edm_bdia.editing.latents import FORMAT, Latents, check_latents_fit, read_latents, write_latents
from edm_bdia.editing.sources import ImageSource, class_indices, one_hot
from edm_bdia.errors import ArgumentError
from edm_bdia.files import atomic_write, check_writable_file
from edm_bdia.files.images import to_hwc_arrays, to_uint8
from edm_bdia.generation.manifest import claim_outdir
from edm_bdia.generation.outputs import check_finite, check_outdir, claimed, has_png
from edm_bdia.generation.runtime import lockstep_batches, open_runtime
from edm_bdia.generation.writer import ImageWriter
from edm_bdia.sample import DEFAULT_BASE, DEFAULT_GAMMA, BDIAPair, bdia_edit, bdia_encode, bdia_sample
from edm_bdia.sample import round_trip_settings
from edm_bdia.speed import apply_plan, make_plan


@dataclasses.dataclass(frozen=True)
class EditSettings:
    """The invertible sampler of a round trip: EDM's noise levels, BDIA's gamma and base, and the strength (the
    fraction of the steps inverted; 1 = all the way to the latents)."""
    num_steps: int = 18
    sigma_min: float = 0.002
    sigma_max: float = 80
    rho: float = 7
    gamma: object = DEFAULT_GAMMA
    base: str = DEFAULT_BASE
    strength: float = 1.0

    def resolve(self, net):
        """(noise levels t_0 > ... > t_N = 0 for `net`, the step k the inversion stops at); checks every setting."""
        sigmas, _, start_step = round_trip_settings(net, num_steps=self.num_steps, sigma_min=self.sigma_min,
                                                    sigma_max=self.sigma_max, rho=self.rho, gamma=self.gamma,
                                                    base=self.base, strength=self.strength)
        return sigmas, start_step

    def record(self, net):
        sigmas, start_step = self.resolve(net)
        return dict(sigmas=sigmas.tolist(), gamma=self.gamma, base=self.base, strength=self.strength,
                    start_step=start_step, num_steps=self.num_steps)


def _exact_arithmetic(net):
    """Run `net` in full float32: no TF32 inside convolutions and matmuls, no fp16 UNet."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    if getattr(net, 'use_fp16', False):
        net.use_fp16 = False


def _open(network, device, tile, trust_pickle_code, check):
    def prepare(net):
        check(net)
        _exact_arithmetic(net)
    return open_runtime(network, device=device, speed='reference', tile=tile, trust_pickle_code=trust_pickle_code,
                        check=prepare)


def _fit_tile_to_images(runtime, count, tile):
    """Without a `tile` asked for, no more samples per call than there are images: a few images are not padded to
    the default tile. The rule depends on the images alone, so resumed runs with other batch sizes keep it."""
    if tile is None and runtime.net.plan.tile is not None and count < runtime.net.plan.tile:
        _use_tile_of(runtime, count)


def _use_tile_of(runtime, recorded):
    """Call the network on the tiles the inversion used (`recorded`, from its latents file), so that every call
    of the round trip repeats one of the inversion's."""
    if recorded != runtime.net.plan.tile:
        runtime.net = distributed.attempt(lambda: apply_plan(
            runtime.opened.net, make_plan('reference', runtime.device, tile=recorded), runtime.device))


def _check_pixels(net):
    if net.img_channels not in (1, 3):
        raise ValueError(f'the network makes {net.img_channels}-channel images; images have 1 (grayscale) or 3 '
                         '(RGB) channels')


def _part_path(parts, index):
    return os.path.join(parts, f'{index:06d}.npz')


def invert_images(network, images, out, *, class_idx=None, settings=EditSettings(), max_batch_size=64, device='auto',
                  tile=None, trust_pickle_code=False, resume=False, progress=False):
    """Invert the images of `images` (a folder, .zip or generate.py .npz) into BDIA start pairs and write them to
    the latents file `out`; yields each batch's image indices as they are done.

    class_idx: the class of every image (conditional networks), else the .npz's labels. tile: samples per network
    call (default: 8 on CPU/MPS, at most the number of images; the batch on CUDA); the latents file records it
    for `edit_images`. Each image's pair is first written to `<out>.parts/` (crash-safe), so `resume` continues a
    killed run with any batch size or number of processes; rank 0 joins the parts into `out` at the end and
    removes the folder.
    """
    parts = os.fspath(out) + '.parts'
    fresh = not os.path.exists(parts)  # a run that fails before writing a part removes it again
    state = {}

    def check(net):
        _check_pixels(net)
        state['source'] = source = ImageSource(images)
        source.check_for(net)
        state['labels'] = class_indices(net, source, range(len(source)), class_idx)
        state['sigmas'], _ = settings.resolve(net)

    runtime = _open(network, device, tile, trust_pickle_code, check)
    source, labels, sigmas = state['source'], state['labels'], state['sigmas'].to(runtime.state_device)
    _fit_tile_to_images(runtime, len(source), tile)
    record = dict(format=FORMAT, edm_bdia_version=edm_bdia.__version__, images=os.path.abspath(source.path),
                  network=dict(source=runtime.opened.label, sha256=runtime.opened.sha256),
                  class_idx=class_idx, tile=runtime.net.plan.tile, **settings.record(runtime.opened.net))
    def process(indices):
        if resume and all(os.path.exists(_part_path(parts, i)) for i in indices):
            return list(indices)
        x = source.batch(indices, runtime.net.img_channels, runtime.state_device)
        class_labels = one_hot(runtime.net, None if labels is None else labels[list(indices)], runtime.state_device)
        with torch.no_grad():
            _, x_start, x_next = bdia_encode(runtime.net, x, class_labels, sigmas=sigmas, gamma=settings.gamma,
                                             base=settings.base, strength=settings.strength).pair
        check_finite(x_start, [source.names[i] for i in indices])
        for row, index in enumerate(indices):
            pair = dict(x_start=x_start[row].cpu().numpy(), x_next=x_next[row].cpu().numpy())
            atomic_write(_part_path(parts, index), lambda f, pair=pair: np.savez(f, **pair))
        return list(indices)

    distributed.attempt(lambda: (check_writable_file(out, 'out'), check_outdir(parts, argument='out')))
    parts_record = dict(record, network=dict(record['network'], source=None))
    with claimed(parts, lambda: claim_outdir(parts, parts_record, resume, has_images=bool(os.listdir(parts)),
                                             argument='out'), fresh):
        yield from lockstep_batches(range(len(source)), max_batch_size, process, progress=progress)
        distributed.on_rank_zero(lambda: _join_parts(parts, out, source, labels, record))


def _join_parts(parts, out, source, labels, settings):
    pairs = [np.load(_part_path(parts, index)) for index in range(len(source))]
    latents = Latents(x_start=np.stack([pair['x_start'] for pair in pairs]),
                      x_next=np.stack([pair['x_next'] for pair in pairs]),
                      labels=np.full(len(source), -1, np.int64) if labels is None else labels,
                      names=source.names, settings=settings)
    write_latents(out, latents)
    shutil.rmtree(parts)


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


def edit_images(network, outdir, *, latents=None, images=None, source_class=None, target_class=None,
                settings=EditSettings(), max_batch_size=64, device='auto', tile=None, trust_pickle_code=False,
                resume=False, progress=False):
    """Regenerate images under `target_class` and write them as `outdir/{index:06d}.png`; yields each batch's uint8
    NCHW images.

    From `latents` (a file of `invert_images`, made by this network: its settings are used) or from `images` (a
    folder, .zip or .npz, inverted here with `settings`, SDEdit-style for a strength < 1; `source_class` as
    `class_idx` of `invert_images`). Without `target_class` each image keeps its class: the images come back.
    `tile` as in `invert_images`; with `latents`, the tile recorded there is used.
    """
    if (latents is None) == (images is None):
        raise ArgumentError('latents', 'or `images` is needed, not both: a latents file from invert, or images')
    if latents is not None and tile is not None:
        raise ArgumentError('tile', 'comes from the latents file (the tile of its inversion, so that the calls '
                                    'repeat); drop it')
    fresh = not os.path.exists(outdir)  # a run that fails before writing an image removes it again
    state = {}

    def check(net):
        _check_pixels(net)
        if images is not None:
            state['source'] = source = ImageSource(images)
            source.check_for(net)
            state['sources'] = class_indices(net, source, range(len(source)), source_class, argument='source_class')
            state['sigmas'], state['start_step'] = settings.resolve(net)
            state['count'], state['names'] = len(source), source.names

    runtime = _open(network, device, tile, trust_pickle_code, check)
    if latents is not None:
        data = distributed.attempt(lambda: read_latents(latents))
        distributed.attempt(lambda: check_latents_fit(data, latents, runtime.net, runtime.opened.sha256))
        _use_tile_of(runtime, data.settings.get('tile', runtime.net.plan.tile))  # older files: the default's
        state.update(sources=None if data.labels.min() < 0 else data.labels, count=len(data), names=data.names,
                     sigmas=torch.tensor(data.settings['sigmas'], dtype=torch.float64),
                     start_step=data.settings['start_step'])
        used = dict(gamma=data.settings['gamma'], base=data.settings['base'], strength=data.settings['strength'])
    else:
        used = dict(gamma=settings.gamma, base=settings.base, strength=settings.strength)
        _fit_tile_to_images(runtime, state['count'], tile)
    net = runtime.net
    targets = distributed.attempt(lambda: _target_indices(net, target_class, state['sources'], state['count']))
    sigmas = state['sigmas'].to(runtime.state_device)
    manifest = dict(edm_bdia_version=edm_bdia.__version__, network=dict(source=None, sha256=runtime.opened.sha256),
                    source=os.path.abspath(latents if latents is not None else images), target_class=target_class,
                    source_class=source_class, sigmas=sigmas.tolist(), start_step=state['start_step'],
                    tile=net.plan.tile, **used)

    def edit(indices):
        rows = list(indices)
        target = one_hot(net, None if targets is None else targets[rows], runtime.state_device)
        with torch.no_grad():
            if latents is not None:
                pair = BDIAPair(state['start_step'], torch.as_tensor(data.x_start[rows]).to(runtime.state_device),
                                torch.as_tensor(data.x_next[rows]).to(runtime.state_device))
                return bdia_sample(net, pair, target, sigmas=sigmas, gamma=used['gamma'], base=used['base']).images
            source = one_hot(net, None if state['sources'] is None else state['sources'][rows], runtime.state_device)
            return bdia_edit(net, state['source'].batch(rows, net.img_channels, runtime.state_device), source,
                             target, sigmas=sigmas, gamma=used['gamma'], base=used['base'],
                             strength=used['strength']).images

    def process(writer, indices):
        paths = [os.path.join(outdir, f'{index:06d}.png') for index in indices]
        todo = [i for i, path in enumerate(paths) if not (resume and os.path.exists(path))]
        if not todo:
            return None
        edited = edit(indices)
        check_finite(edited, [state['names'][i] for i in indices])
        images_uint8 = to_uint8(edited)
        arrays = to_hwc_arrays(images_uint8)
        for i in todo:
            writer.submit(arrays[i], paths[i])
        return images_uint8

    distributed.attempt(lambda: check_outdir(outdir))
    with claimed(outdir, lambda: claim_outdir(outdir, manifest, resume, has_images=has_png(outdir)), fresh):
        with ImageWriter() as writer:
            yield from lockstep_batches(range(state['count']), max_batch_size,
                                        lambda indices: process(writer, indices), progress=progress)
            distributed.attempt(writer.close)
