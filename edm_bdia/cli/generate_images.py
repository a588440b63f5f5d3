"""`generate_images.py` / `python -m edm_bdia generate-images`: NVlabs edm2's generate_images.py command line, plus
this package's extras (resume, the manifest, --grid, --npz, --fid-ref, --speed, the invertible sampler).

NVlabs edm2 commands run unchanged. This module only parses options, applies a preset and calls the library
(edm_bdia.generation, through the job generate.py runs too).
"""

import click

from edm_bdia.cli.errors import command_errors
from edm_bdia.cli.generate import JOB_OPTIONS, check_output_options, run_job
from edm_bdia.cli.options import SeedList, bdia_options, fill_from_preset, job_options

# Library argument names -> this command's options (for error lines).
OPTIONS = {'network': '--net', 'gnet': '--gnet', 'guidance': '--guidance', 'seeds': '--seeds', 'class_idx': '--class',
           'max_batch_size': '--batch', 'num_steps': '--steps', 'sigma_min': '--sigma_min', 'sigma_max': '--sigma_max',
           'rho': '--rho', 'S_churn': '--S_churn', 'S_min': '--S_min', 'S_max': '--S_max', 'S_noise': '--S_noise',
           'gamma': '--gamma', 'bdia_base': '--bdia-base', 'device': '--device', 'outdir': '--outdir',
           'reference': '--fid-ref', 'detector': '--detector', 'mode': '--speed', 'tile': '--tile',
           'compile': '--compile', 'cuda_graphs': '--cuda-graphs', 'trust_pickle_code': '--trust-pickle-code',
           'grid': '--grid', 'npz': '--npz'}


def apply_preset(ctx, options):
    """Fill every option the user did not give from `--preset` (net, gnet, guidance, sampler settings, FID
    reference), then check the network and guidance options as edm2 does."""
    from edm_bdia.checkpoints.presets import PRESETS
    name = options.pop('preset')
    if name is not None and name not in PRESETS:
        raise click.UsageError(f'--preset {name!r} is not a preset; python -m edm_bdia presets lists them')
    settings = PRESETS[name].generation_settings() if name is not None else None
    values = {} if settings is None else dict(settings.sampler_options, net=settings.network, gnet=settings.gnet,
                                               guidance=settings.guidance)
    given = fill_from_preset(ctx, options, name, values, None if settings is None else settings.fid_ref)
    if options['net'] is None:
        raise click.UsageError('please specify either --preset or --net')
    if options['guidance'] is None or options['guidance'] == 1:
        if 'gnet' in given:
            raise click.UsageError('--gnet is only used with --guidance other than 1 (edm2 drops it); drop --gnet or '
                                   'give --guidance')
        options['guidance'], options['gnet'] = 1, None
    elif options['gnet'] is None:
        raise click.UsageError('please specify --gnet when using guidance')
    return options


def run(net, gnet, seeds, **options):
    """The output options and the sampler settings, checked before torch is imported (identically on every rank);
    then the job."""
    job = {name: options.pop(name) for name in JOB_OPTIONS}
    check_output_options(seeds, **job)
    from edm_bdia.generation import choose_edm2_sampler
    sampler_fn, sampler_kwargs = choose_edm2_sampler(**options)
    run_job(net, seeds, sampler_fn, sampler_kwargs, gnet=gnet, **job)


@click.command(context_settings=dict(help_option_names=['-h', '--help'], max_content_width=110))
@click.option('--preset', metavar='STR', type=str, default=None,
              help='Configuration preset (python -m edm_bdia presets)')
@click.option('--net', metavar='PATH|URL|PRESET', type=str, default=None, help='Network pickle filename')
@click.option('--gnet', metavar='PATH|URL|PRESET', type=str, default=None, help='Reference network for guidance')
@click.option('--outdir', metavar='DIR', type=str, help='Where to save the output images (optional with --fid-ref)')
@click.option('--subdirs', is_flag=True, help='Create subdirectory for every 1000 seeds')
@click.option('--seeds', metavar='LIST', type=SeedList(), default='16-19', show_default=True,
              help='List of random seeds (e.g. 1,2,5-10)')
@click.option('--class', 'class_idx', metavar='INT', type=click.IntRange(min=0), default=None,
              help='Class label  [default: random]')
@click.option('--batch', 'max_batch_size', metavar='INT', type=click.IntRange(min=1), default=32, show_default=True,
              help='Maximum batch size')
@click.option('--steps', 'num_steps', metavar='INT', type=click.IntRange(min=2), default=32, show_default=True,
              help='Number of sampling steps')
@click.option('--sigma_min', metavar='FLOAT', type=click.FloatRange(min=0, min_open=True), default=0.002,
              show_default=True, help='Lowest noise level')
@click.option('--sigma_max', metavar='FLOAT', type=click.FloatRange(min=0, min_open=True), default=80,
              show_default=True, help='Highest noise level')
@click.option('--rho', metavar='FLOAT', type=click.FloatRange(min=0, min_open=True), default=7, show_default=True,
              help='Time step exponent')
@click.option('--guidance', metavar='FLOAT', type=float, default=None,
              help='Guidance strength  [default: 1; no guidance]')
@click.option('--S_churn', 'S_churn', metavar='FLOAT', type=click.FloatRange(min=0), default=0, show_default=True,
              help='Stochasticity strength')
@click.option('--S_min', 'S_min', metavar='FLOAT', type=click.FloatRange(min=0), default=0, show_default=True,
              help='Stoch. min noise level')
@click.option('--S_max', 'S_max', metavar='FLOAT', type=click.FloatRange(min=0), default='inf', show_default=True,
              help='Stoch. max noise level')
@click.option('--S_noise', 'S_noise', metavar='FLOAT', type=float, default=1, show_default=True,
              help='Stoch. noise inflation')
@bdia_options("BDIA instead of EDM2's sampler: a strength in [0, 1] (0 = EDM2's)")
@job_options
@click.pass_context
def main(ctx, **options):
    """Generate random images using the given model (NVlabs edm2's generate_images.py, plus edm_bdia's extras).

    \b
    Examples:
      python generate_images.py --preset=edm2-img512-s-guid-dino --outdir=out
      torchrun --standalone --nproc_per_node=8 generate_images.py \\
          --preset=edm2-img64-s-fid --outdir=out --subdirs --seeds=0-49999
    """
    with command_errors(OPTIONS, resumable=True):
        run(**apply_preset(ctx, options))


if __name__ == '__main__':
    main()
