"""An NVlabs checkout first on sys.path owns the name `torch_utils`: every command must still work.

EDM users often run from inside an NVlabs/edm checkout or keep one on PYTHONPATH. Its `torch_utils` package
(persistence, misc, distributed, training_stats) has none of this project's functions; the stand-in below has the
same module names and nothing else, so any plain `import torch_utils...` of ours would fail or pick up the wrong
module.
"""

import os
import sys

import numpy as np
import PIL.Image
import pytest

from helpers.fid import save_torchscript, tiny_inception
from helpers.generate import REPO_DIR, edm_net_pickle, pngs, run

NVLABS_MODULES = {
    '__init__.py': '# NVlabs-style torch_utils stand-in: module names only\nSTANDIN = True\n',
    'persistence.py': 'STANDIN = True\n',
    'misc.py': 'STANDIN = True\n',
    'distributed.py': 'def init():\n    raise RuntimeError("NVlabs distributed.init used")\n',
    'training_stats.py': 'STANDIN = True\n',
}


@pytest.fixture(scope='module')
def shadow(tmp_path_factory):
    """A folder holding an NVlabs-style `torch_utils` package, and a PYTHONPATH that puts it first."""
    root = tmp_path_factory.mktemp('nvlabs_checkout')
    package = root / 'torch_utils'
    package.mkdir()
    for name, text in NVLABS_MODULES.items():
        (package / name).write_text(text)
    return dict(root=root, PYTHONPATH=os.pathsep.join([str(root), REPO_DIR, os.path.join(REPO_DIR, 'tests')]))


def _run(shadow, *args, timeout=300):
    """Run a command from inside the NVlabs-style checkout (cwd first on sys.path) with it first on PYTHONPATH."""
    result = run([sys.executable, *map(str, args)], timeout=timeout, cwd=shadow['root'],
                 PYTHONPATH=shadow['PYTHONPATH'])
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_standin_really_shadows_the_name(shadow):
    result = _run(shadow, '-c', 'import torch_utils; print(torch_utils.STANDIN)')
    assert result.stdout.strip() == 'True'


def test_generate_with_an_nvlabs_pickle(shadow, tmp_path):
    network = edm_net_pickle(tmp_path / 'edm.pkl', resolution=8)
    _run(shadow, os.path.join(REPO_DIR, 'generate.py'), '--network', network, '--outdir', tmp_path / 'out',
         '--seeds', '0-2', '--steps', 2, '--grid', tmp_path / 'grid.png')
    assert sorted(pngs(tmp_path / 'out')) == ['000000.png', '000001.png', '000002.png']


def test_fid_ref_and_calc(shadow, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    for i, array in enumerate(np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)):
        PIL.Image.fromarray(array).save(images / f'{i}.png')
    detector = save_torchscript(tiny_inception(), tmp_path / 'detector.pt')
    fid = os.path.join(REPO_DIR, 'fid.py')
    _run(shadow, fid, 'ref', '--data', images, '--dest', tmp_path / 'ref.npz', '--detector', detector)
    result = _run(shadow, fid, 'calc', '--images', images, '--ref', tmp_path / 'ref.npz', '--num', 6,
                  '--detector', detector)
    assert abs(float(result.stdout.strip().splitlines()[-1])) < 1e-9


def test_module_commands(shadow, tmp_path):
    assert 'edm-cifar10-32x32-cond-vp' in _run(shadow, '-m', 'edm_bdia', 'presets').stdout
    _run(shadow, '-m', 'edm_bdia', 'generate', '--outdir', tmp_path / 'out', '--seeds', '0-1', '--steps', 2)
    assert len(pngs(tmp_path / 'out')) == 2
