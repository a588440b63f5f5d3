"""`python -m edm_bdia presets`: the named checkpoints with their paper settings."""

import dataclasses
import json

import click


@click.command('presets')
@click.option('--json', 'as_json', is_flag=True, help='Print the full records as JSON')
def main(as_json):
    """List the named checkpoints (NVlabs EDM and EDM2 pickles, the built-in model) and their paper settings."""
    from edm_bdia.checkpoints.presets import PRESETS, format_table
    if as_json:
        print(json.dumps([dataclasses.asdict(p) for p in PRESETS.values()], indent=1))
    else:
        print(format_table())
        print('\nURLs: python -m edm_bdia presets --json; any name above works wherever a network is accepted, and '
              'generate.py --preset=NAME also applies its sampler settings. EDM2: net and gnet are pickle names '
              'under https://nvlabs-fi-cdn.nvidia.com/edm2/posthoc-reconstructions/.')
