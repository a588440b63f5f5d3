"""Named checkpoints: every published NVlabs EDM / baseline pickle, every configuration of NVlabs' EDM2
generate_images.py, the built-in analytic model and the digits UNet trained here, whose pickle ships inside the
package (`file`).

The data lives in `presets.json` beside this file (docs/checkpoints.md, 'Presets', explains the fields). A
preset name works wherever a network is accepted (`edm_bdia.load_network('edm-cifar10-32x32-cond-vp')`);
`python -m edm_bdia presets` prints the table. `sampler` holds the recommended `edm_sampler` keyword arguments;
NFE = 2 * num_steps - 1 (Heun with an Euler last step). `fid` is the FID reported by the EDM paper/README for that
setting (minimum of 3 runs of 50k images) or by EDM2's generate_images.py, against the reference statistics named
by `fid_ref` (a name in the registry of edm_bdia.fid.refs). This is the only place that links a checkpoint to its
reference statistics. EDM2 presets add the guiding network `gnet` (a URL, or None), the `guidance` weight and the
published `fd_dinov2` where that is the metric.
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
    gnet: Optional[str] = None   # the guiding network (URL); None: no guidance
    guidance: float = 1          # D = gnet(x).lerp(net(x), guidance); 1 leaves gnet out


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
    gnet: Optional[str] = None        # EDM2: URL of the guiding network (unconditional or weaker); None: unguided
    guidance: float = 1               # EDM2: guidance weight, D = gnet(x).lerp(net(x), guidance)
    fd_dinov2: Optional[float] = None  # EDM2: the published FD_DINOv2 (the metric of the -dino presets)
    file: Optional[str] = None        # a pickle shipped inside this package (edm_bdia/checkpoints/), instead of a URL
    sha256: Optional[str] = None      # of the shipped file: checked whenever it is loaded

    @property
    def net(self):
        """URL of the main network (None for the built-in model); the same as `url`."""
        return self.url

    @property
    def builtin(self):
        """True for the built-in analytic model, which has no file."""
        return self.url is None and self.file is None

    def packaged_path(self):
        """The local path of the pickle shipped with the package (None when the preset has no packaged file)."""
        return None if self.file is None else os.fspath(resources.files(__package__).joinpath(self.file))

    def generation_settings(self):
        """The network, sampler options (a fresh dict, keyed like `edm_sampler`'s arguments), FID reference
        name, guiding network and guidance weight this preset stands for."""
        return GenerationSettings(network=self.name, sampler_options=dict(self.sampler), fid_ref=self.fid_ref,
                                  gnet=self.gnet, guidance=self.guidance)


def _read_presets():
    text = resources.files(__package__).joinpath('presets.json').read_text(encoding='utf-8')
    return {row['name']: Preset(**row) for row in json.loads(text)}


PRESETS = _read_presets()


def presets_using_reference(fid_ref):
    """Names of the presets whose FID is measured against the reference statistics `fid_ref`."""
    return [name for name, preset in PRESETS.items() if preset.fid_ref == fid_ref]


def format_table(presets=None):
    """Plain-text tables of the presets, one per line: the EDM-family presets, then (after a blank line) the EDM2
    presets with their guiding networks."""
    presets = list((presets or PRESETS).values())
    edm = [p for p in presets if p.precond != 'EDM2']
    edm2 = [p for p in presets if p.precond == 'EDM2']
    tables = []
    if edm:
        header = ('name', 'dataset', 'res', 'cond', 'precond', 'arch', 'steps', 'churn', 'NFE', 'FID', 'fid_ref')
        tables.append(_aligned([header] + [
            (p.name, p.dataset.split(' (')[0], str(p.resolution), 'yes' if p.conditional else 'no', p.precond,
             p.arch, str(p.sampler['num_steps']), str(p.sampler.get('S_churn', 0)), str(p.nfe), _number(p.fid),
             p.fid_ref or '-') for p in edm]))
    if edm2:
        header = ('name', 'res', 'cond', 'arch', 'net', 'gnet', 'guidance', 'steps', 'NFE', 'FID', 'FD_DINOv2',
                  'fid_ref')
        tables.append(_aligned([header] + [
            (p.name, str(p.resolution), 'yes' if p.conditional else 'no', p.arch, _file_stem(p.net),
             _file_stem(p.gnet), f'{p.guidance:g}', str(p.sampler['num_steps']), str(p.nfe), _number(p.fid),
             _number(p.fd_dinov2), p.fid_ref or '-') for p in edm2]))
    return '\n\n'.join(tables)


def _aligned(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _number(value):
    return '-' if value is None else f'{value:g}'


def _file_stem(url):
    """'edm2-img512-xs-2147483-0.135' of a pickle URL; '-' for None."""
    return '-' if url is None else url.rsplit('/', 1)[-1].removesuffix('.pkl')
