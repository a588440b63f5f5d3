"""The benchmark scripts: the GPU check on a machine without CUDA (a clear refusal, the --dry-run path end to end),
the NVlabs baseline of the throughput comparison (NVlabs' generate.py on the CPU, pickles built by its own code,
the restated call pattern) and the engine runs with a separately timed network."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.common.engine import ZeroCostNet, engine_net, run_engine, sampler_for
from benchmarks.common.metered_net import MeteredNet
from benchmarks.common.nvlabs_commands import check_checkout, nvlabs_command, restated_command, write_nvlabs_pickle
from edm_bdia.speed import make_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the refusal on a machine without CUDA')
def test_gpu_check_refuses_without_cuda_with_one_line():
    result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh')], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == ('gpu_check.sh: CUDA is not available here; run on a CUDA machine or pass '
                                     '--dry-run')


def test_gpu_check_rejects_unknown_arguments():
    result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), '--fast'], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown argument '--fast'" in result.stderr


@pytest.mark.slow
def test_gpu_check_dry_run_prints_parity_throughput_and_projection_tables(tmp_path):
    out = tmp_path / 'gpu.md'
    result = subprocess.run([sys.executable, '-m', 'benchmarks.gpu_check', '--dry-run', '--out',
                             str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text == result.stdout
    # CPU against CPU: the parity rows must be exact passes; CUDA-only variants are reported as skipped
    for arch in ('cifar10-ddpmpp-cond', 'imagenet-adm-cond', 'ffhq-ddpmpp-uncond', 'afhqv2-ncsnpp-uncond'):
        assert f'| {arch} | 0.0e+00 | 0.000% | 0 | pass |' in text
        for variant in ('NVlabs as-is', 'fp32', 'fast fp32 (NHWC)', 'bf16'):
            assert f'| {arch} | {variant} | 4 |' in text
    assert text.count('skipped (CUDA only)') == 4 * 4
    # the projection restates the CIFAR-10 rows: hours = first call + 50,000 images x 35 NFE x ms per evaluation
    projection = text[text.index('## Projected 50,000-image run'):]
    for variant in ('NVlabs as-is', 'fp32', 'fast fp32 (NHWC)', 'bf16'):
        row = text.split(f'| cifar10-ddpmpp-cond | {variant} | 4 | ')[1].split('\n')[0].split(' | ')
        ms, first = float(row[0]), float(row[4])
        hours = float(projection.split(f'| {variant} | ')[1].split(' |')[0])
        assert hours == pytest.approx((first + 50_000 * 35 * ms / 1e3) / 3600, rel=2e-3, abs=0.006)
    assert '| NVlabs as-is | ' in projection and ' | 1.00x |' in projection


def test_gpu_check_budget_leaves_architectures_unstarted_and_keeps_the_report(tmp_path):
    out = tmp_path / 'gpu.md'
    result = subprocess.run([sys.executable, '-m', 'benchmarks.gpu_check', '--dry-run', '--budget', '0',
                             '--models', 'cifar10-ddpmpp-cond', '--out', str(out)], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text == result.stdout and '| cifar10-ddpmpp-cond | 0.0e+00 | 0.000% | 0 | pass |' in text
    assert 'Not measured (past the 0 s budget): cifar10-ddpmpp-cond.' in text and 'Projected' not in text


def test_gpu_check_rejects_unknown_models_with_one_line():
    result = subprocess.run([sys.executable, '-m', 'benchmarks.gpu_check', '--dry-run', '--models',
                             'cifar10-ddpmpp-cond,lsun'], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1 and result.stderr.strip() == (
        "gpu_check: --models 'cifar10-ddpmpp-cond,lsun': unknown architecture lsun; use a comma-separated subset of "
        'cifar10-ddpmpp-cond, imagenet-adm-cond, ffhq-ddpmpp-uncond, afhqv2-ncsnpp-uncond')


# ---- the NVlabs baseline of benchmarks/throughput.py ----------------------------------------------------------

# A stand-in for an NVlabs/edm checkout with the same entry points and the same two CUDA-only places: the process
# group setup (NCCL) and main's `device` default. Its main() reports what it was given instead of sampling.
FAKE_GENERATE = '''
import json, os, click, torch
from torch_utils import distributed as dist

@click.command()
@click.option('--network', 'network_pkl', required=True)
@click.option('--outdir', required=True)
@click.option('--seeds', default='0-63')
@click.option('--batch', 'max_batch_size', type=int, default=64)
@click.option('--steps', 'num_steps', type=int, default=18)
def main(network_pkl, outdir, seeds, max_batch_size, device=torch.device('cuda'), **sampler_kwargs):
    dist.init()
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'run.json'), 'w') as f:
        json.dump(dict(device=str(device), backend=torch.distributed.get_backend(), cwd=os.getcwd(),
                       world=torch.distributed.get_world_size(), network=network_pkl, seeds=seeds,
                       batch=max_batch_size, steps=sampler_kwargs['num_steps']), f)

if __name__ == '__main__':
    main()
'''
FAKE_FILES = {
    'generate.py': FAKE_GENERATE,
    'torch_utils/__init__.py': '',
    'torch_utils/distributed.py': 'def init():\n    raise RuntimeError("NCCL needs a CUDA device")\n',
    'dnnlib/__init__.py': 'from . import util\n',
    'dnnlib/util.py': ('import importlib\n\ndef construct_class_by_name(class_name, **kwargs):\n'
                       '    module, name = class_name.rsplit(".", 1)\n'
                       '    return getattr(importlib.import_module(module), name)(**kwargs)\n'),
    'training/__init__.py': '',
    'training/networks.py': ('import torch\n\nclass EDMPrecond(torch.nn.Module):\n'
                             '    def __init__(self, channels):\n        super().__init__()\n'
                             '        self.proj = torch.nn.Linear(channels, channels)\n'),
}


@pytest.fixture
def fake_checkout(tmp_path):
    for name, text in FAKE_FILES.items():
        (tmp_path / 'edm' / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'edm' / name).write_text(text)
    return tmp_path / 'edm'


def test_nvlabs_generate_runs_on_the_cpu_with_only_its_cuda_places_changed(fake_checkout, tmp_path):
    check_checkout(str(fake_checkout))
    outdir = tmp_path / 'out'
    result = subprocess.run(nvlabs_command(str(fake_checkout), 'net.pkl', str(outdir), '0-31', 32, 3),
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((outdir / 'run.json').read_text())
    assert report == dict(device='cpu', backend='gloo', world=1, cwd=str(fake_checkout), network='net.pkl',
                          seeds='0-31', batch=32, steps=3)


def test_nvlabs_pickle_is_built_by_the_checkouts_own_class(fake_checkout, tmp_path):
    ours = torch.nn.Module()
    ours.proj = torch.nn.Linear(3, 3)
    out = tmp_path / 'net.pkl'
    write_nvlabs_pickle(str(fake_checkout), ours, dict(channels=3), str(out), str(tmp_path))
    sys.path.insert(0, str(fake_checkout))
    try:
        with open(out, 'rb') as f:
            ema = pickle.load(f)['ema']
    finally:
        sys.path.remove(str(fake_checkout))
        for name in [name for name in sys.modules if name == 'training' or name.startswith('training.')]:
            del sys.modules[name]
    assert type(ema).__module__ == 'training.networks' and not ema.training
    assert all(torch.equal(a, b) for a, b in zip(ema.state_dict().values(), ours.state_dict().values()))
    assert not any(p.requires_grad for p in ema.parameters())


def test_a_folder_that_is_no_nvlabs_checkout_is_named(tmp_path):
    with pytest.raises(ValueError, match='not an NVlabs/edm checkout .missing generate.py, dnnlib'):
        check_checkout(str(tmp_path))


def test_restated_nvlabs_call_pattern_makes_nvlabs_pngs(tmp_path):
    """Batch of one: the restatement's PNG bytes equal an independent restatement of NVlabs' sampler; a whole
    batch of 3 in one network call stays within one level of that."""
    from helpers.generate import edm_net_pickle, nvlabs_reference_png
    network = edm_net_pickle(tmp_path / 'edm.pkl')
    for batch in (1, 3):
        result = subprocess.run(restated_command(network, str(tmp_path / f'b{batch}'), '0-2', batch, 3),
                                capture_output=True, text=True, cwd=ROOT, timeout=300,
                                env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert result.returncode == 0, result.stderr
    with open(network, 'rb') as f:
        net = pickle.load(f)['ema']
    for seed in range(3):
        name = f'{seed:06d}.png'
        assert (tmp_path / 'b1' / name).read_bytes() == nvlabs_reference_png(net, seed, 3)
        whole = np.asarray(Image.open(tmp_path / 'b3' / name)).astype(int)
        assert np.abs(whole - np.asarray(Image.open(tmp_path / 'b1' / name)).astype(int)).max() <= 1


def test_engine_runs_time_the_network_separately(tmp_path):
    wall, network = run_engine(ZeroCostNet(), sampler_for('edm', 3), range(5), 2, str(tmp_path))
    assert 0 < network < wall
    assert sorted(p.name for p in tmp_path.glob('*.png')) == [f'{seed:06d}.png' for seed in range(5)]
    assert engine_net(ZeroCostNet()).plan == make_plan('reference', 'cpu', batch_invariant=True)
    timed = MeteredNet(ZeroCostNet())
    timed(torch.zeros(1, 3, 32, 32), 1.0)
    assert timed.calls == 1 and timed.img_resolution == 32
