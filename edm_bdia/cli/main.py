"""`python -m edm_bdia COMMAND`: every command line of the package under one name."""

import click

from edm_bdia.cli import calculate_metrics, edit, fid, generate, generate_images, presets


@click.group(context_settings=dict(help_option_names=['-h', '--help'], max_content_width=110))
def main():
    """edm_bdia: EDM and BDIA sampling of NVlabs EDM checkpoints, sharded generation, FID and FD_DINOv2."""


main.add_command(generate.main, 'generate')
main.add_command(generate_images.main, 'generate-images')
main.add_command(fid.main, 'fid')
main.add_command(calculate_metrics.main, 'metrics')
main.add_command(presets.main, 'presets')
main.add_command(edit.invert, 'invert')
main.add_command(edit.edit, 'edit')
