"""Generate images with a (NVlabs EDM or built-in) network: NVlabs-compatible, sharded, resumable.

NVlabs `generate.py` commands run unchanged and write the same PNG files: same options and defaults, per-seed
random streams (float32 latents, then a class label if the net is conditional, then the sampler's draws), the
same batching over ranks and the same uint8 conversion and file names (edm-format.md §3). Additions: BDIA
(--gamma, --bdia-base), presets and a built-in offline default network, --device, --resume with a manifest,
atomic writes, --grid and --npz, and one-line errors on every rank instead of tracebacks or hangs.

Run as `edm-bdia-generate`, `python -m edm_bdia.generate` or `python generate.py`; under `torchrun` or `srun`
the seeds are split over the processes.
"""

import contextlib
import dataclasses
import os
import sys
import traceback

import click
import torch
import tqdm

import edm_bdia
from edm_bdia.distributed import all_batches
from edm_bdia.generation.manifest import claim_outdir, make_manifest, network_sha256
from edm_bdia.generation.outputs import has_png, read_images, write_collections
from edm_bdia.generation.sampler_choice import noise_source, select_sampler
from edm_bdia.generation.seeds import image_path, parse_seeds
from edm_bdia.generation.inputs import batch_inputs
from edm_bdia.generation.network import sampler_device, sampling_net
from edm_bdia.generation.writer import ImageWriter
from edm_bdia.files import remove_stale_temp_files
from edm_bdia.files.images import to_hwc_arrays, to_uint8
from edm_bdia.speed import MODES, SpeedModeError, accelerate
from edm_bdia.speed.modes import plan as speed_plan
from edm_bdia.analytic import TOY_MODEL_NAME
from edm_bdia import distributed


class SeedList(click.ParamType):
    """--seeds: NVlabs syntax ('0-63', '1,5,10-19'); empty or reversed ranges are usage errors."""
    name = 'seeds'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_seeds(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Gamma(click.ParamType):
    """--gamma: a number in [0, 1] or 'obelm'."""
    name = 'gamma'

    def convert(self, value, param, ctx):
        if value == 'obelm' or isinstance(value, float):
            return value
        try:
            gamma = float(value)
        except ValueError:
            self.fail(f'{value!r} is neither a number in [0, 1] nor "obelm"', param, ctx)
        if not 0 <= gamma <= 1:
            self.fail(f'{gamma} is outside [0, 1]', param, ctx)
        return gamma


def _attempt(action):
    """distributed.attempt(action), and exceptions without a prepared message (bugs) also print their traceback
    on the rank where they happened."""
    def explained():
        try:
            return action()
        except Exception as exc:
            if not isinstance(exc, distributed.RankFailure) and not hasattr(exc, 'format_message'):
                traceback.print_exc()  # not one of the explained errors (click's, FID's): show where it happened
            raise
    return distributed.attempt(explained)


def load_net(source, device, trust_pickle_code):
    from edm_bdia.download import DownloadError
    from edm_bdia.loading import PickleLoadError, load_network

    try:
        return load_network(source, device=device, trust_pickle_code=trust_pickle_code)
    except (PickleLoadError, DownloadError, OSError) as exc:
        raise click.ClickException(f'--network {source}: {exc}') from None


def check_net(net, class_idx):
    if net.img_channels not in (1, 3):
        raise click.ClickException(f'the network makes {net.img_channels}-channel images; PNG output supports 1 '
                                   '(grayscale) or 3 (RGB) channels')
    if class_idx is not None and not net.label_dim:
        raise click.UsageError(f'--class {class_idx}: the network is unconditional (label_dim = 0); drop --class')
    if class_idx is not None and class_idx >= net.label_dim:
        raise click.UsageError(f'--class {class_idx}: the network has {net.label_dim} classes (0 to '
                               f'{net.label_dim - 1})')


def prepare_network(source, device, trust_pickle_code, class_idx):
    """Rank 0 loads first (a URL or preset is downloaded into the cache once), then the other ranks."""
    distributed.print0(f'Loading network from "{source}"...')
    with distributed.rank_zero_first():
        net = load_net(source, device, trust_pickle_code)
    _attempt(lambda: check_net(net, class_idx))
    return net


def prepare_fid(fid_ref, detector, device, trust_pickle_code):
    """Detector on every rank (rank 0 downloads first); the reference statistics on rank 0, before sampling."""
    from edm_bdia.generation.streaming_fid import StreamingFid

    distributed.print0(f'Loading the FID detector and reference statistics "{fid_ref}"...')
    with distributed.rank_zero_first():
        fid = StreamingFid(fid_ref, detector, device, trust_pickle_code)
    _attempt(lambda: fid.load_reference() if distributed.get_rank() == 0 else None)
    return fid


def check_output_options(outdir, seeds, resume, subdirs, grid, npz, fid_ref, detector):
    if outdir is None and fid_ref is None:
        raise click.UsageError('give --outdir (images as PNG files) and/or --fid-ref (FID without files)')
    needs_outdir = [name for name, value in (('--resume', resume), ('--subdirs', subdirs), ('--grid', grid),
                                             ('--npz', npz)) if value]
    if outdir is None and needs_outdir:
        raise click.UsageError(f'{", ".join(needs_outdir)} work(s) on the PNG files: give --outdir too')
    if detector is not None and fid_ref is None:
        raise click.UsageError('--detector is only used with --fid-ref')
    if fid_ref is not None and len(seeds) < 2:
        raise click.UsageError('--fid-ref needs at least 2 seeds (the covariance of one image is undefined)')


def prepare_outdir(outdir):
    """Create `outdir`, prove it is writable and remove temporary files left by a killed run."""
    try:
        os.makedirs(outdir, exist_ok=True)
        probe = os.path.join(outdir, f'.write-test-{os.getpid()}')
        with open(probe, 'wb'):
            pass
        os.remove(probe)
    except OSError as exc:
        raise click.ClickException(f'--outdir {outdir} is not writable ({exc.strerror or exc}); choose another '
                                   'folder') from None
    remove_stale_temp_files(outdir)


def check_speed(speed, device, tile, compile_net, cuda_graphs):
    """The speed plan for this device, or a usage error naming --speed (identical on every rank)."""
    try:
        return speed_plan(speed, device, tile, compile_net, cuda_graphs)
    except SpeedModeError as exc:
        raise click.UsageError(f'--speed {speed}: {exc}') from None


def apply_speed(net, plan, device):
    """The network with the plan's levers applied (reference mode: the network itself, untouched)."""
    if plan.mode == 'reference':
        return net
    try:
        return accelerate(net, plan.mode, device=device, tile=plan.tile, compile=plan.compile,
                          cuda_graphs=plan.cuda_graphs, channels_last=plan.channels_last)
    except SpeedModeError as exc:
        raise click.ClickException(f'--speed {plan.mode}: {exc}') from None


def record_settings(outdir, resume, network_pkl, net, sampler, class_idx, subdirs, device, plan):
    """Rank 0: write the manifest, or check the existing one against this run's settings."""
    manifest = make_manifest(
        version=edm_bdia.__version__, network_source=network_pkl,
        network_sha256=network_sha256(network_pkl, net), sampler=sampler[0],
        sampler_kwargs=sampler[2], class_idx=class_idx, subdirs=subdirs, device_type=device.type,
        speed=dict(mode=plan.mode, tile=plan.tile, channels_last=plan.channels_last))
    claim_outdir(outdir, manifest, resume, has_png(outdir))


@contextlib.contextmanager
def write_errors_explained():
    try:
        yield
    except OSError as exc:
        raise click.ClickException(f'cannot write an image: {exc}; check --outdir and the free disk space') from None


def sample_batch(net, seeds, device, class_idx, sampler):
    """uint8 NCHW images for `seeds` with `sampler` = (name, function, kwargs)."""
    name, function, kwargs = sampler
    rnd, latents, class_labels = batch_inputs(net, seeds, device, class_idx)
    randn_like = noise_source(name, kwargs, rnd)
    extra = {} if randn_like is None else dict(randn_like=randn_like)
    with torch.no_grad():
        images = function(net, latents, class_labels, **extra, **kwargs)
    return to_uint8(images)


@dataclasses.dataclass
class Job:
    """What every batch of one run shares."""
    net: object
    state_device: torch.device
    sampler: tuple
    class_idx: object
    outdir: object
    subdirs: bool
    resume: bool
    writer: ImageWriter
    fid: object


def process_batch(job, batch):
    """Sample the batch (unless --resume finds all its PNGs), queue its PNGs, feed its images to the FID."""
    paths = [image_path(job.outdir, seed, job.subdirs) for seed in batch] if job.outdir else []
    todo = [i for i, path in enumerate(paths) if not (job.resume and os.path.exists(path))]
    if not batch or (paths and not todo):
        if batch and job.fid is not None:  # resumed: the images are the PNGs already on disk
            job.fid.update(torch.as_tensor(read_images(job.outdir, batch, job.subdirs)).permute(
                0, 3, 1, 2))
        return
    images = sample_batch(job.net, batch, job.state_device, job.class_idx, job.sampler)
    if job.fid is not None:
        job.fid.update(images)
    arrays = to_hwc_arrays(images)
    with write_errors_explained():  # a partly done batch is sampled whole: its images match an uninterrupted run
        for i in todo:
            os.makedirs(os.path.dirname(paths[i]), exist_ok=True)
            job.writer.submit(arrays[i], paths[i])


def run_batches(job, batches, rank, world_size):
    """This rank's batches, in lockstep with the others: after each round every rank knows of any failure."""
    total = sum(len(batch) for batch in batches)
    with tqdm.tqdm(total=total, unit='img', disable=(rank != 0), file=sys.stderr, dynamic_ncols=True) as bar:
        for round_start in range(0, len(batches), world_size):
            _attempt(lambda: process_batch(job, batches[round_start + rank]))
            bar.update(sum(len(batch) for batch in batches[round_start:round_start + world_size]))

        def finish_writes():
            with write_errors_explained():
                job.writer.close()

        _attempt(finish_writes)


def generate(network_pkl, outdir, seeds, subdirs, class_idx, max_batch_size, device, resume, grid, npz,
             trust_pickle_code, fid_ref, detector, speed, tile, compile_net, cuda_graphs, **sampler_options):
    sampler = select_sampler(**sampler_options)  # usage errors first: identical on every rank
    check_output_options(outdir, seeds, resume, subdirs, grid, npz, fid_ref, detector)
    device = _attempt(lambda: distributed.init(device))
    plan = _attempt(lambda: check_speed(speed, device, tile, compile_net, cuda_graphs))
    rank, world_size = distributed.get_rank(), distributed.get_world_size()
    net = prepare_network(network_pkl, device, trust_pickle_code, class_idx)
    fid = prepare_fid(fid_ref, detector, device, trust_pickle_code) if fid_ref is not None else None
    # Before anything is written; a pickle's manifest hash is of its file, so the in-place conversion is fine.
    sampling = _attempt(lambda: apply_speed(net, plan, device))
    if outdir is not None:
        _attempt(lambda: prepare_outdir(outdir))
        _attempt(lambda: record_settings(outdir, resume, network_pkl, net, sampler, class_idx, subdirs,
                                         device, plan) if rank == 0 else None)

    state_device = sampler_device(device)
    distributed.print0(f'Generating {len(seeds)} images{f" to {outdir}" if outdir else ""} with {sampler[0]} '
                       f'on {world_size} process(es), device {device.type}...')
    with ImageWriter() as writer:
        job = Job(sampling_net(sampling, device), state_device, sampler, class_idx, outdir, subdirs, resume, writer,
                  fid)
        run_batches(job, all_batches(seeds, max_batch_size, world_size), rank, world_size)

    if grid or npz:
        distributed.print0('Writing ' + ' and '.join(filter(None, [grid, npz])) + '...')
        _attempt(lambda: write_collections(outdir, seeds, subdirs, grid, npz, net, state_device,
                                                       class_idx) if rank == 0 else None)
    distributed.print0('Done.')
    if fid is not None:
        fid.all_reduce()
        _attempt(lambda: print(f'{fid.distance():g}') if rank == 0 else None)  # the last line: the FID


@click.command(context_settings=dict(help_option_names=['-h', '--help'], max_content_width=110))
@click.option('--network', 'network_pkl', metavar='PATH|URL|PRESET', default=TOY_MODEL_NAME, show_default=True,
              help='Network pickle (path or URL), a preset name (python -m edm_bdia presets) or the built-in model')
@click.option('--outdir', metavar='DIR', type=str, help='Where to save the output images (optional with --fid-ref)')
@click.option('--seeds', metavar='LIST', type=SeedList(), default='0-63', show_default=True,
              help='Random seeds, e.g. 1,2,5-10')
@click.option('--subdirs', is_flag=True, help='Create a subdirectory for every 1000 seeds')
@click.option('--class', 'class_idx', metavar='INT', type=click.IntRange(min=0), default=None,
              help='Class label  [default: random]')
@click.option('--batch', 'max_batch_size', metavar='INT', type=click.IntRange(min=1), default=64,
              show_default=True, help='Maximum batch size')
@click.option('--steps', 'num_steps', metavar='INT', type=click.IntRange(min=2), default=18, show_default=True,
              help='Number of sampling steps')
@click.option('--sigma_min', metavar='FLOAT', type=click.FloatRange(min=0, min_open=True),
              help='Lowest noise level  [default: varies]')
@click.option('--sigma_max', metavar='FLOAT', type=click.FloatRange(min=0, min_open=True),
              help='Highest noise level  [default: varies]')
@click.option('--rho', metavar='FLOAT', type=click.FloatRange(min=0, min_open=True), default=7, show_default=True,
              help='Time step exponent')
@click.option('--S_churn', 'S_churn', metavar='FLOAT', type=click.FloatRange(min=0), default=0, show_default=True,
              help='Stochasticity strength')
@click.option('--S_min', 'S_min', metavar='FLOAT', type=click.FloatRange(min=0), default=0, show_default=True,
              help='Stochastic min noise level')
@click.option('--S_max', 'S_max', metavar='FLOAT', type=click.FloatRange(min=0), default='inf', show_default=True,
              help='Stochastic max noise level')
@click.option('--S_noise', 'S_noise', metavar='FLOAT', type=float, default=1, show_default=True,
              help='Stochastic noise inflation')
@click.option('--solver', type=click.Choice(['euler', 'heun']), help='Ablate ODE solver')
@click.option('--disc', 'discretization', type=click.Choice(['vp', 've', 'iddpm', 'edm']),
              help='Ablate time step discretization')
@click.option('--schedule', type=click.Choice(['vp', 've', 'linear']), help='Ablate noise schedule sigma(t)')
@click.option('--scaling', type=click.Choice(['vp', 'none']), help='Ablate signal scaling s(t)')
@click.option('--gamma', metavar='FLOAT|obelm', type=Gamma(), default=0.0, show_default=True,
              help='BDIA strength in [0, 1] (0 = plain EDM); "obelm" = O-BELM step-dependent gamma')
@click.option('--bdia-base', 'bdia_base', type=click.Choice(['heun', 'euler']), default=None,
              help='Base solver of BDIA  [default: heun; euler with --gamma obelm]')
@click.option('--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto', show_default=True,
              help='Compute device (auto: CUDA if available, else CPU)')
@click.option('--resume', is_flag=True, help='Skip seeds whose image exists (same settings only)')
@click.option('--grid', metavar='PATH', type=str, help='Also save a grid image of the first 64 images')
@click.option('--npz', metavar='PATH', type=str, help='Also save all images as uint8 NHWC arr_0 (+ labels arr_1)')
@click.option('--fid-ref', metavar='NAME|PATH|URL', type=str,
              help='Compute FID against these reference statistics while generating (fid_refs name, .npz, URL)')
@click.option('--detector', metavar='PATH|URL', type=str,
              help='FID detector weights  [default: NVIDIA inception-2015-12-05]')
@click.option('--speed', type=click.Choice(MODES), default='reference', show_default=True,
              help='reference: NVlabs arithmetic bit for bit; fast: NHWC activations and fixed-size network tiles; '
                   'bf16 (CPU/CUDA) / fp16 (CUDA): 16-bit UNet, changes pixels (README: Performance)')
@click.option('--tile', metavar='INT', type=click.IntRange(min=1),
              help='Samples per network call with --speed fast|bf16|fp16  [default: 8 on CPU, the batch on CUDA]')
@click.option('--compile', 'compile_net', is_flag=True, help='torch.compile the network (not with --speed reference)')
@click.option('--cuda-graphs', is_flag=True, help='Replay network calls from CUDA graphs (CUDA, not with '
              '--speed reference)')
@click.option('--trust-pickle-code', is_flag=True,
              help='Allow pickles whose classes are not known to edm_bdia to run their embedded code')
def main(**options):
    """Generate images with EDM or BDIA sampling from an NVlabs EDM checkpoint or a built-in model.

    \b
    Examples:
      edm-bdia-generate --outdir=out --seeds=0-63 --grid=grid.png
      torchrun --standalone --nproc_per_node=8 -m edm_bdia.generate --outdir=out --seeds=0-49999 --subdirs \\
          --network=edm-cifar10-32x32-cond-vp
    """
    try:
        generate(**options)
    except distributed.RankFailure as exc:
        raise click.ClickException(exc.message) from None
    finally:
        distributed.shutdown()


if __name__ == '__main__':
    main()
