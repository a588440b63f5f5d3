"""The solver study's quick mode runs end to end, so the study code cannot rot (`python -m benchmarks.solver_study`)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # about 30 s: the quick study builds twelve testbeds and runs every method twice
def test_quick_study_measures_every_method_at_equal_nfe(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'benchmarks.solver_study', '--quick', '--out', str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / 'solver_study.json').read_text())
    assert (tmp_path / 'solver_study_results.md').is_file()
    assert (tmp_path / 'solver_study_error.png').stat().st_size > 0
    records = {(r['testbed'], r['method'], r['nfe']): r for r in data['records']}
    beds = {'gaussian', 'toy', 'sharp', 'grid', 'toy-x6', 'toy-x0.1', 'sharp-64', 'low-rank', 'grid-fine', 'widths-2d',
            'imbalanced'} | ({'digits'} if importlib.util.find_spec('sklearn') else set())
    assert {r['testbed'] for r in data['records']} == beds
    nfes = data['config']['nfes']
    # step counts that give every method the same number of network evaluations (the study counts them too)
    for nfe in nfes:
        assert records[('toy', 'Euler', nfe)]['steps'] == nfe
        assert records[('toy', 'Heun (EDM)', nfe)]['steps'] == (nfe + 1) // 2
        assert records[('toy', 'BDIA-heun g=1', nfe)]['steps'] == (nfe + 1) // 2
        assert records[('toy', 'O-BELM (BDIA-euler g=obelm)', nfe)]['steps'] == nfe
        assert records[('toy', 'Reversible Heun', nfe)]['steps'] == nfe - 1
    for (bed, method, nfe), r in records.items():
        # one sample's mean square is at most the whole set's times its size
        assert r['nfe'] == nfe and 0 <= r['median'] <= r['rms'] * data['config']['samples'][bed] ** 0.5
        if method.startswith(('BDIA', 'O-BELM', 'Reversible')):
            assert r['round_trip'] <= 1e-9, (bed, method, nfe)  # exact inverses in float64
    # Heun converges on the exact Gaussian and its approximate inversion is visibly inexact
    assert records[('gaussian', 'Heun (EDM)', nfes[1])]['rms'] < records[('gaussian', 'Heun (EDM)', nfes[0])]['rms']
    assert records[('gaussian', 'Heun (EDM)', nfes[1])]['round_trip'] > 1e-4
    # the 2-D grid reports its wrong-mode rate, as a fraction
    assert 0 <= records[('grid', 'Euler', nfes[0])]['wrong_mode'] <= 1
    if importlib.util.find_spec('k_diffusion') and importlib.util.find_spec('torchsde'):
        assert ('toy', 'DPM-Solver++(2M)', nfes[0]) in records
