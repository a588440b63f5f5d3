"""Named checkpoints: every published NVlabs EDM / baseline pickle, the built-in analytic model and the digits UNet
trained here, whose pickle ships inside the package (`file`).

The data lives in `presets.json` beside this file (docs/checkpoints.md, 'Presets', explains the fields). A
preset name works wherever a network is accepted (`edm_bdia.load_network('edm-cifar10-32x32-cond-vp')`);
`python -m edm_bdia presets` prints the table. `sampler` holds the recommended `edm_sampler` keyword arguments;
NFE = 2 * num_steps - 1 (Heun with an Euler last step). `fid` is the FID reported by the EDM paper/README for that
setting (minimum of 3 runs of 50k images) against the reference statistics named by `fid_ref` (a name in the
registry of edm_bdia.fid.refs). This is the only place that links a checkpoint to its reference statistics.
"""

import dataclasses
import json
import os
from importlib import resources
from typing import Optional


@dataclasses.dataclass(frozen=True)
class GenerationSettings:
    """What a preset fills in for a generation run: the network, the sampler's keyword arguments and the name of
    the FID reference statistics (None when there are none)."""
    network: str
    sampler_options: dict
    fid_ref: Optional[str]


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str                 # file stem of the pickle
    url: Optional[str]        # None for the built-in model (no file)
    dataset: str
    resolution: int
    conditional: bool
    precond: str              # EDM, VP, VE, iDDPM (or 'analytic' for the built-in model)
    arch: str                 # DDPM++, NCSN++, ADM; '-vp'/'-ve'/'-adm' in edm-* names is the architecture
    sampler: dict             # recommended edm_sampler kwargs (num_steps, S_churn, ...)
    nfe: int
    fid: Optional[float]
    fid_ref: Optional[str]
    source: str               # where the FID and settings come from
    notes: Optional[str] = None
    file: Optional[str] = None  # a pickle shipped inside this package (edm_bdia/checkpoints/), instead of a URL
    sha256: Optional[str] = None  # of the shipped file: checked whenever it is loaded

    @property
    def builtin(self):
        """True for the built-in analytic model, which has no file."""
        return self.url is None and self.file is None

    def packaged_path(self):
        """The local path of the pickle shipped with the package (None when the preset has no packaged file)."""
        return None if self.file is None else os.fspath(resources.files(__package__).joinpath(self.file))

    def generation_settings(self):
        """The network, sampler options (a fresh dict, keyed like `edm_sampler`'s arguments) and FID reference
        name this preset stands for."""
        return GenerationSettings(network=self.name, sampler_options=dict(self.sampler), fid_ref=self.fid_ref)


def _read_presets():
    text = resources.files(__package__).joinpath('presets.json').read_text(encoding='utf-8')
    return {row['name']: Preset(**row) for row in json.loads(text)}


PRESETS = _read_presets()


def presets_using_reference(fid_ref):
    """Names of the presets whose FID is measured against the reference statistics `fid_ref`."""
    return [name for name, preset in PRESETS.items() if preset.fid_ref == fid_ref]


def format_table(presets=None):
    """Plain-text table of the presets, one per line."""
    presets = list((presets or PRESETS).values())
    header = ('name', 'dataset', 'res', 'cond', 'precond', 'arch', 'steps', 'churn', 'NFE', 'FID', 'fid_ref')
    rows = [header] + [(p.name, p.dataset.split(' (')[0], str(p.resolution), 'yes' if p.conditional else 'no',
                        p.precond, p.arch, str(p.sampler['num_steps']), str(p.sampler.get('S_churn', 0)),
                        str(p.nfe), '-' if p.fid is None else f'{p.fid:g}', p.fid_ref or '-') for p in presets]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
