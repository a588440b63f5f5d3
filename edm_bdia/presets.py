"""Named checkpoints: every published NVlabs EDM / baseline pickle plus the built-in toy model.

The data lives in `edm_bdia/data/presets.json` (edm-format.md §2). A preset name works wherever a network is
accepted (`edm_bdia.load_network('edm-cifar10-32x32-cond-vp')`); `python -m edm_bdia presets` prints the table.
`sampler` holds the recommended `edm_sampler` keyword arguments; NFE = 2 * num_steps - 1 (Heun with an Euler
last step). `fid` is the FID reported by the EDM paper/README for that setting (minimum of 3 runs of 50k
images) against the reference statistics named by `fid_ref` (an `edm_bdia.fid.refs` registry key).
"""

import dataclasses
import json
from importlib import resources
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str                 # file stem of the pickle
    url: Optional[str]        # None for the built-in toy model
    dataset: str
    resolution: int
    conditional: bool
    precond: str              # EDM, VP, VE, iDDPM (or 'analytic' for the toy model)
    arch: str                 # DDPM++, NCSN++, ADM; '-vp'/'-ve'/'-adm' in edm-* names is the architecture
    sampler: dict             # recommended edm_sampler kwargs (num_steps, S_churn, ...)
    nfe: int
    fid: Optional[float]
    fid_ref: Optional[str]
    source: str               # where the FID and settings come from
    notes: Optional[str] = None


def _read_presets():
    text = resources.files('edm_bdia').joinpath('data', 'presets.json').read_text(encoding='utf-8')
    return {row['name']: Preset(**row) for row in json.loads(text)}


PRESETS = _read_presets()


def format_table(presets=None):
    """Plain-text table of the presets, one per line."""
    presets = list((presets or PRESETS).values())
    header = ('name', 'dataset', 'res', 'cond', 'precond', 'arch', 'steps', 'churn', 'NFE', 'FID', 'fid_ref')
    rows = [header] + [(p.name, p.dataset.split(' (')[0], str(p.resolution), 'yes' if p.conditional else 'no',
                        p.precond, p.arch, str(p.sampler['num_steps']), str(p.sampler.get('S_churn', 0)),
                        str(p.nfe), '-' if p.fid is None else f'{p.fid:g}', p.fid_ref or '-') for p in presets]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
