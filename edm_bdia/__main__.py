"""`python -m edm_bdia presets`: list the named checkpoints."""

import argparse
import json
import dataclasses

from edm_bdia.presets import PRESETS, format_table


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m edm_bdia', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    presets = commands.add_parser('presets', help='list the named checkpoints (NVlabs EDM pickles, toy model)')
    presets.add_argument('--json', action='store_true', help='print the full records as JSON')
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in PRESETS.values()], indent=1))
    else:
        print(format_table())
        print('\nURLs: python -m edm_bdia presets --json; any name above works wherever a network is accepted.')


if __name__ == '__main__':
    main()
