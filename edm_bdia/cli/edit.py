"""`python -m edm_bdia invert` and `python -m edm_bdia edit`: real images to BDIA latents and back, regenerated
under another class; sharded over processes with torchrun and resumable like generate.py."""

import click

from edm_bdia.cli.errors import command_errors
from edm_bdia.cli.options import invertible_sampler_options, run_options

OPTIONS = {'network': '--network', 'images': '--images', 'out': '--out', 'outdir': '--outdir', 'latents': '--latents',
           'class_idx': '--class', 'target_class': '--class', 'source_class': '--source-class',
           'num_steps': '--steps', 'sigma_min': '--sigma_min', 'sigma_max': '--sigma_max', 'rho': '--rho',
           'gamma': '--gamma', 'base': '--bdia-base', 'strength': '--strength', 'device': '--device',
           'max_batch_size': '--batch', 'tile': '--tile', 'trust_pickle_code': '--trust-pickle-code',
           'gnet': '--gnet', 'guidance': '--guidance'}
TILE = click.option('--tile', metavar='INT', type=click.IntRange(min=1),
                    help='Samples per network call, which are padded to it  [default: 8 on CPU, or the number of '
                         'images when fewer; the batch on CUDA]')
CONTEXT = dict(help_option_names=['-h', '--help'], max_content_width=110)


def _settings(num_steps, sigma_min, sigma_max, rho, gamma, base, strength, guidance):
    from edm_bdia.editing import EditSettings
    return EditSettings(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho, gamma=gamma,
                        base=base, strength=strength, guidance=guidance)


@click.command(context_settings=CONTEXT)
@click.option('--images', metavar='PATH|ZIP|NPZ', required=True, help='Images: a folder, a .zip or a generate.py .npz')
@click.option('--out', metavar='NPZ', required=True, help='The latents file to write')
@click.option('--class', 'class_idx', metavar='INT', type=click.IntRange(min=0),
              help='Class of the images (conditional networks; a generate.py .npz brings its labels)')
@invertible_sampler_options
@run_options
@TILE
def invert(images, out, class_idx, network_pkl, gnet, max_batch_size, device, resume, trust_pickle_code, tile,
           **sampler):
    """Invert real images into BDIA latents: one .npz with the state pairs, labels, settings and the network's
    sha256, from which `edit` regenerates them exactly or under another class.

    \b
    Examples:
      python -m edm_bdia invert --images=out --out=latents.npz --class=3
      torchrun --standalone --nproc_per_node=2 -m edm_bdia invert --images=photos.zip --out=latents.npz \\
          --network=edm-cifar10-32x32-cond-vp --class=3
    """
    with command_errors(OPTIONS, resumable=True):
        from edm_bdia.editing import invert_images
        from edm_bdia.speed import retain_freed_memory
        retain_freed_memory()  # as in generate: the process only runs the job
        for _ in invert_images(network_pkl, images, out, class_idx=class_idx, settings=_settings(**sampler),
                               gnet=gnet, max_batch_size=max_batch_size, device=device, tile=tile,
                               trust_pickle_code=trust_pickle_code, resume=resume, progress=True):
            pass


@click.command(context_settings=CONTEXT)
@click.option('--latents', metavar='NPZ', help='A latents file from `invert` (its settings are used)')
@click.option('--images', metavar='PATH|ZIP|NPZ', help='Or images to invert and edit in one go')
@click.option('--outdir', metavar='DIR', required=True, help='Where to save the edited images')
@click.option('--class', 'target_class', metavar='INT', type=click.IntRange(min=0),
              help='Class to regenerate the images under  [default: their own: a reconstruction]')
@click.option('--source-class', metavar='INT', type=click.IntRange(min=0),
              help='Class of --images (conditional networks; a generate.py .npz brings its labels)')
@invertible_sampler_options
@run_options
@TILE
def edit(latents, images, outdir, target_class, source_class, network_pkl, gnet, max_batch_size, device, resume,
         trust_pickle_code, tile, **sampler):
    """Edit images: regenerate inverted images (a latents file from `invert`, or --images inverted here) under
    another class, as PNG files `{index:06d}.png`. --strength below 1 inverts only part of the way and keeps more
    of each image.

    \b
    Examples:
      python -m edm_bdia edit --latents=latents.npz --class=5 --outdir=edited
      python -m edm_bdia edit --images=out --source-class=3 --class=5 --strength=0.6 --outdir=edited
    """
    ctx = click.get_current_context()
    recorded = ('num_steps', 'sigma_min', 'sigma_max', 'rho', 'gamma', 'base', 'strength', 'guidance',
                'tile')  # in the file
    given = [OPTIONS[name] for name in recorded
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if latents is not None and given:
        raise click.UsageError(f'{", ".join(given)}: a latents file carries its sampler settings and tile; drop '
                               'them, or invert again with other settings')
    if latents is not None and source_class is not None:
        raise click.UsageError('--source-class: a latents file carries the classes of its images; drop it')

    with command_errors(OPTIONS, resumable=True):
        from edm_bdia.editing import edit_images
        from edm_bdia.speed import retain_freed_memory
        retain_freed_memory()  # as in generate: the process only runs the job
        for _ in edit_images(network_pkl, outdir, latents=latents, images=images, source_class=source_class,
                             target_class=target_class, settings=_settings(**sampler), gnet=gnet,
                             max_batch_size=max_batch_size,
                             device=device, tile=tile, trust_pickle_code=trust_pickle_code, resume=resume,
                             progress=True):
            pass
