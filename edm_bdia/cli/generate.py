"""`generate.py` / `python -m edm_bdia generate`: NVlabs' generate.py command line, plus BDIA, presets and more.

NVlabs commands run unchanged and write the same PNG files. This module only parses options, applies a preset,
calls `edm_bdia.generation.generate_images` (or `generated_metrics`) and prints the metrics; the library does the
work.
"""

import click

from edm_bdia.cli.errors import command_errors
from edm_bdia.cli.fid import print_values
from edm_bdia.cli.options import SeedList, bdia_options, fill_from_preset, job_options, preset_choice

# Library argument names -> this command's options (for error lines).
OPTIONS = {'network': '--network', 'seeds': '--seeds', 'class_idx': '--class', 'max_batch_size': '--batch',
           'num_steps': '--steps', 'sigma_min': '--sigma_min', 'sigma_max': '--sigma_max', 'rho': '--rho',
           'S_churn': '--S_churn', 'S_min': '--S_min', 'S_max': '--S_max', 'S_noise': '--S_noise',
           'solver': '--solver', 'discretization': '--disc', 'schedule': '--schedule', 'scaling': '--scaling',
           'gamma': '--gamma', 'bdia_base': '--bdia-base', 'device': '--device', 'outdir': '--outdir',
           'reference': '--fid-ref', 'detector': '--detector', 'mode': '--speed', 'tile': '--tile',
           'compile': '--compile', 'cuda_graphs': '--cuda-graphs', 'trust_pickle_code': '--trust-pickle-code',
           'grid': '--grid', 'npz': '--npz'}


def apply_preset(ctx, options):
    """Fill every option the user did not give from `--preset` (network, sampler settings, FID reference)."""
    from edm_bdia.checkpoints.presets import PRESETS
    name = options.pop('preset')
    settings = PRESETS[name].generation_settings() if name is not None else None
    values = {} if settings is None else dict(settings.sampler_options, network_pkl=settings.network)
    fill_from_preset(ctx, options, name, values, None if settings is None else settings.fid_ref)
    return options


def check_output_options(seeds, *, outdir, resume, subdirs, grid, npz, fid_ref, detector, metrics, dinov2, **_):
    """The output options make sense together (`_`: the job's other options)."""
    if outdir is None and fid_ref is None:
        raise click.UsageError('give --outdir (images as PNG files) and/or --fid-ref (FID without files)')
    needs_outdir = [name for name, value in (('--resume', resume), ('--subdirs', subdirs), ('--grid', grid),
                                             ('--npz', npz)) if value]
    if outdir is None and needs_outdir:
        raise click.UsageError(f'{", ".join(needs_outdir)} work(s) on the PNG files: give --outdir too')
    for option, value in (('--detector', detector), ('--metrics', metrics), ('--dinov2', dinov2)):
        if value is not None and fid_ref is None:
            raise click.UsageError(f'{option} is only used with --fid-ref')
    if fid_ref is not None and len(seeds) < 2:
        raise click.UsageError('--fid-ref needs at least 2 seeds (the covariance of one image is undefined)')


def run(network_pkl, seeds, **options):
    """The output options and generate.py's sampler options, routed as NVlabs routes them, checked before torch is
    imported (identically on every rank); then the job."""
    job = {name: options.pop(name) for name in JOB_OPTIONS}
    check_output_options(seeds, **job)
    from edm_bdia.generation import choose_sampler
    sampler_fn, sampler_kwargs = choose_sampler(**options)
    run_job(network_pkl, seeds, sampler_fn, sampler_kwargs, **job)


JOB_OPTIONS = ('outdir', 'subdirs', 'class_idx', 'max_batch_size', 'device', 'resume', 'grid', 'npz',
               'trust_pickle_code', 'fid_ref', 'detector', 'metrics', 'dinov2', 'speed', 'tile', 'compile_net',
               'cuda_graphs')


def run_job(network, seeds, sampler_fn, sampler_kwargs, *, outdir, subdirs, class_idx, max_batch_size, device, resume,
            grid, npz, trust_pickle_code, fid_ref, detector, metrics, dinov2, speed, tile, compile_net, cuda_graphs,
            gnet=None):
    """The generate job (or the metrics of its images) with the options generate.py and generate_images.py share."""
    if fid_ref is not None:
        from edm_bdia.fid.metrics import parse_metrics
        metrics = parse_metrics(metrics or 'fid')  # before torch is imported: a typo fails at once
    from edm_bdia.generation import generate_images, generated_metrics
    from edm_bdia.speed import retain_freed_memory
    retain_freed_memory()  # this process only runs the job: its network calls stop page-faulting their buffers
    job = dict(sampler_fn=sampler_fn, class_idx=class_idx, max_batch_size=max_batch_size, device=device, speed=speed,
               tile=tile, compile=compile_net, cuda_graphs=cuda_graphs, outdir=outdir, subdirs=subdirs, resume=resume,
               grid=grid, npz=npz, trust_pickle_code=trust_pickle_code, progress=True, **sampler_kwargs)
    if gnet is not None:
        job['gnet'] = gnet
    if fid_ref is None:
        for _ in generate_images(network, seeds, **job):
            pass
        return
    values = generated_metrics(network, seeds, fid_ref, metrics=metrics, detector=detector, dinov2=dinov2, **job)
    if values is not None:  # rank 0
        print_values(values)  # the last lines: the FID alone, or `metric = value` per metric


@click.command(context_settings=dict(help_option_names=['-h', '--help'], max_content_width=110))
@click.option('--network', 'network_pkl', metavar='PATH|URL|PRESET', default='toy-mixture-32x32-cond',
              show_default=True, help='Network pickle (path or URL), a preset name (python -m edm_bdia presets) or the '
                                      'built-in model')
@click.option('--preset', metavar='NAME', type=preset_choice(), default=None,
              help="A published checkpoint with its paper settings: fills --network, the sampler options and "
                   "--fid-ref's reference unless given")
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
@click.option('--sigma_min', metavar='FLOAT', type=float, help='Lowest noise level  [default: varies]')
@click.option('--sigma_max', metavar='FLOAT', type=float, help='Highest noise level  [default: varies]')
@click.option('--rho', metavar='FLOAT', type=float, default=7, show_default=True, help='Time step exponent')
@click.option('--S_churn', 'S_churn', metavar='FLOAT', type=float, default=0, show_default=True,
              help='Stochasticity strength')
@click.option('--S_min', 'S_min', metavar='FLOAT', type=float, default=0, show_default=True,
              help='Stochastic min noise level')
@click.option('--S_max', 'S_max', metavar='FLOAT', type=float, default='inf', show_default=True,
              help='Stochastic max noise level')
@click.option('--S_noise', 'S_noise', metavar='FLOAT', type=float, default=1, show_default=True,
              help='Stochastic noise inflation')
@click.option('--solver', type=click.Choice(['euler', 'heun']), help='Ablate ODE solver')
@click.option('--disc', 'discretization', type=click.Choice(['vp', 've', 'iddpm', 'edm']),
              help='Ablate time step discretization')
@click.option('--schedule', type=click.Choice(['vp', 've', 'linear']), help='Ablate noise schedule sigma(t)')
@click.option('--scaling', type=click.Choice(['vp', 'none']), help='Ablate signal scaling s(t)')
@bdia_options('BDIA strength in [0, 1] (0 = plain EDM)')
@job_options
@click.pass_context
def main(ctx, **options):
    """Generate images with EDM or BDIA sampling from an NVlabs EDM checkpoint or a built-in model.

    \b
    Examples:
      python generate.py --outdir=out --seeds=0-63 --grid=grid.png
      python generate.py --preset=edm-imagenet-64x64-cond-adm --outdir=out --seeds=0-49999 --subdirs
      torchrun --standalone --nproc_per_node=8 generate.py --outdir=out --seeds=0-49999 --subdirs \\
          --network=edm-cifar10-32x32-cond-vp
    """
    with command_errors(OPTIONS, resumable=True):
        run(**apply_preset(ctx, options))


if __name__ == '__main__':
    main()
