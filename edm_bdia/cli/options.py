"""Option types shared by the commands: seed lists, BDIA's gamma, preset names."""

import click

from edm_bdia.generation.seeds import Seeds, parse_seeds


class SeedList(click.ParamType):
    """--seeds: NVlabs syntax ('0-63', '1,5,10-19'), held lazily; empty or reversed ranges are usage errors."""
    name = 'seeds'

    def convert(self, value, param, ctx):
        if isinstance(value, Seeds):
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


def preset_choice():
    """click.Choice over the preset names (python -m edm_bdia presets)."""
    from edm_bdia.checkpoints.presets import PRESETS
    return click.Choice(list(PRESETS))
