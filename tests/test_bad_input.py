"""Bad input everywhere (issue 10): every command line (generate, fid calc/ref/refs, invert, edit, presets,
`python -m edm_bdia`) answers with exactly one `Error:` line that names the option, a non-zero exit status, no
traceback and nothing left behind (no PNG, no partial npz, no manifest or folder that did not exist, no temporary
file); the Python API raises the documented exception naming the argument. Plus the promises that need their own
processes: usage errors fail before torch is imported, offline failures come at once and say where to put the
file, one failing rank under torchrun stops every rank with the same line, two runs racing on one folder with
different settings cannot both claim it."""

import json
import os
import pathlib
import pickle
import subprocess
import sys
import threading
import time
import types
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import edm_bdia
from edm_bdia import editing, generation, sample
from edm_bdia.checkpoints.download import cache_path
from edm_bdia.networks.own_torch_utils import own_persistence
from edm_bdia.cli.main import main
from edm_bdia.fid import datasets, frechet, refs
from edm_bdia.runs import manifest as manifest_module
from edm_bdia.speed import make_plan
from helpers.fid import save_trusted_standin
from helpers.generate import REPO_DIR, free_port, run, subprocess_env, tiny_net_pickle

pytestmark = pytest.mark.usefixtures('one_thread')

# A denoiser with EDM's interface whose output is NaN on one rank of a launch (every rank: rank = -1). Its class
# lives only in the pickle (torch_utils persistence), so a torchrun child can load it with --trust-pickle-code.
NAN_NET_SOURCE = '''
import os
import torch
from torch_utils import persistence


@persistence.persistent_class
class NanOnRank(torch.nn.Module):
    sigma_min = 0.002
    sigma_max = 80.0

    def __init__(self, rank, resolution=8, label_dim=0):
        super().__init__()
        self.rank = rank
        self.img_channels, self.img_resolution, self.label_dim = 3, resolution, label_dim

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)

    def forward(self, x, sigma, class_labels=None, **kwargs):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)
        bad = self.rank < 0 or int(os.environ.get('RANK', '0')) == self.rank
        return x / (1 + sigma ** 2) * (float('nan') if bad else 1.0)
'''
OFFLINE = {'EDM_BDIA_OFFLINE': '1'}
ONLINE = {'EDM_BDIA_OFFLINE': '0'}  # still nothing leaves the machine: the URLs are refused or cannot resolve
REFUSED_URL = 'http://127.0.0.1:9/net.pkl'  # port 9 (discard): nothing listens, the connection is refused
UNRESOLVABLE_URL = 'http://edm-bdia.invalid/net.pkl'  # .invalid never resolves (RFC 2606)
PRESET_URL = 'https://nvlabs-fi-cdn.nvidia.com/edm/pretrained/edm-cifar10-32x32-cond-vp.pkl'


# ---- inputs -----------------------------------------------------------------------------------------------------

def _png(path, size=8, seed=0):
    array = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PIL.Image.fromarray(array).save(path)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _cli_ok(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _broken_latents(root, good):
    """Latents files that break one rule each, derived from a good one: latents_<name>.npz."""
    with np.load(good, allow_pickle=False) as npz:
        fields = {key: npz[key] for key in npz.files}
    settings = json.loads(str(fields['settings']))
    variants = {
        'mixed_labels': dict(labels=np.array([3, -1] * (len(fields['labels']) // 2))),
        'labels_42': dict(labels=np.full(len(fields['labels']), 42)),
        'labels_2d': dict(labels=fields['labels'][:, None]),
        'labels_float': dict(labels=fields['labels'].astype(np.float64)),
        'labels_text': dict(labels=fields['labels'].astype(str)),
        'state_float16': dict(x_start=fields['x_start'].astype(np.float16)),
        'state_int': dict(x_next=fields['x_next'].astype(np.int64)),
        'state_complex': dict(x_start=fields['x_start'].astype(np.complex128)),
        'settings_not_json': dict(settings=np.asarray('{"format": ')),
        'settings_list': dict(settings=np.asarray(json.dumps([settings]))),
        'settings_number': dict(settings=np.asarray('7')),
        'settings_no_network': dict(settings=np.asarray(json.dumps({k: v for k, v in settings.items()
                                                                    if k != 'network'}))),
        'settings_no_sigmas': dict(settings=np.asarray(json.dumps({k: v for k, v in settings.items()
                                                                   if k != 'sigmas'}))),
        'no_images': {key: fields[key][:0] for key in ('x_start', 'x_next', 'labels', 'names', 'latents')},
        'state_shapes_differ': dict(x_next=fields['x_next'][..., :16, :16]),
        'labels_missing_one': dict(labels=fields['labels'][:-1]),
        'labels_below_minus_one': dict(labels=np.full(len(fields['labels']), -2)),
        'state_nan': dict(x_next=np.where(np.arange(fields['x_next'].size).reshape(fields['x_next'].shape) == 7,
                                          np.nan, fields['x_next'])),
    }
    for name, changed in variants.items():
        _npz(root / f'latents_{name}.npz', **dict(fields, **changed))


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """Every input of the table, made once (read-only for the cases: the leftover check covers this folder)."""
    root = tmp_path_factory.mktemp('bad_input_inputs')
    paths = dict(root=str(root), cache=str(root / 'cache'))  # the download cache stays empty (and absent)
    for i in range(6):
        _png(root / 'images8' / f'{i}.png', 8, i)
    for i in range(3):
        _png(root / 'images32' / f'{i}.png', 32, i)
    for i in range(6):
        _png(root / 'truncated32' / f'{i}.png', 32, i)
    whole = (root / 'truncated32' / '4.png').read_bytes()
    (root / 'truncated32' / '4.png').write_bytes(whole[:len(whole) // 2])  # a valid header, half the pixels
    for i in range(4):
        _png(root / 'mixed' / f'{i}.png', 8, i)
    _png(root / 'mixed' / 'big.png', 16)
    for i in range(3):
        _png(root / 'corrupt' / f'{i}.png', 8, i)
    (root / 'corrupt' / 'bad.png').write_bytes(b'\x89PNG truncated')
    _png(root / 'one' / '0.png', 8)
    (root / 'empty').mkdir()
    (root / 'text.txt').write_text('not an image, a pickle or an archive\n')
    (root / 'empty.pkl').write_bytes(b'')
    (root / 'a_file').write_bytes(b'')
    (root / 'folder.npz').mkdir()
    with zipfile.ZipFile(root / 'mixed.zip', 'w') as archive:
        for name in sorted(os.listdir(root / 'mixed')):
            archive.write(root / 'mixed' / name, name)
    (root / 'broken.zip').write_bytes(b'PK\x03\x04 not really a zip')
    _npz(root / 'float.npz', arr_0=np.zeros((4, 8, 8, 3), np.float32))
    _npz(root / 'no_arr0.npz', images=np.zeros((4, 8, 8, 3), np.uint8))
    _npz(root / 'bad_labels.npz', arr_0=np.zeros((2, 32, 32, 3), np.uint8), arr_1=np.array([3, 42]))
    _npz(root / 'float_labels.npz', arr_0=np.zeros((2, 32, 32, 3), np.uint8), arr_1=np.array([3.0, 4.7]))
    # reference statistics: the stand-in detector gives 8 features
    eye = np.eye(8)
    _npz(root / 'stats8.npz', mu=np.zeros(8), sigma=eye)
    _npz(root / 'stats_dim5.npz', mu=np.zeros(5), sigma=np.eye(5))
    _npz(root / 'stats_nan.npz', mu=np.full(8, np.nan), sigma=eye)
    _npz(root / 'stats_asym.npz', mu=np.zeros(8), sigma=eye + np.triu(np.ones((8, 8)), 1))
    _npz(root / 'stats_no_mu.npz', sigma=eye)
    _npz(root / 'stats_negative.npz', mu=np.zeros(8), sigma=-eye)
    _npz(root / 'stats_huge.npz', mu=np.full(8, 1e200), sigma=eye * 1e200)
    (root / 'bomb').mkdir()  # a 1-bit PNG of 200 M pixels: 24 kB on disk, PIL refuses to decode it
    PIL.Image.new('1', (20000, 10000)).save(root / 'bomb' / '0.png')
    _png(root / 'bomb' / '1.png', 8)
    with open(root / 'stats_code.pkl', 'wb') as f:
        pickle.dump({'fid': {'mu': os.system, 'sigma': eye}}, f)  # a global outside the allow-list
    save_trusted_standin(root / 'standin.pkl')
    # networks
    (root / 'nets').mkdir()
    paths['cond'] = tiny_net_pickle(root / 'nets' / 'cond.pkl', label_dim=4, resolution=8)
    tiny_net_pickle(root / 'uncond.pkl', label_dim=0, resolution=8)
    tiny_net_pickle(root / 'two_channel.pkl', channels=2, resolution=8)
    with open(root / 'no_ema.pkl', 'wb') as f:
        pickle.dump(dict(generator=[1, 2, 3]), f)
    nan_module = own_persistence()._src_to_module(NAN_NET_SOURCE)
    for name, rank in (('nan_net', -1), ('nan_on_rank1', 1)):
        with open(root / f'{name}.pkl', 'wb') as f:
            pickle.dump(dict(ema=nan_module.NanOnRank(rank)), f)
    # output folders made by earlier runs
    _cli_ok('generate', '--outdir', root / 'quickstart', '--seeds', '0-3', '--steps', 2, '--grid',
            root / 'quickstart' / 'grid.png')  # the README quick start's layout: the grid inside the image folder
    _cli_ok('generate', '--outdir', root / 'made_with_2_steps', '--seeds', '0-1', '--steps', 2)
    _png(root / 'no_manifest' / '000000.png', 32)
    (root / 'bad_manifest').mkdir()
    (root / 'bad_manifest' / manifest_module.MANIFEST_NAME).write_text('{not json')
    _cli_ok('invert', '--images', root / 'images32', '--class', 3, '--out', root / 'latents.npz', '--steps', 8)
    _cli_ok('edit', '--latents', root / 'latents.npz', '--class', 5, '--outdir', root / 'edited_as_5')
    _broken_latents(root, root / 'latents.npz')
    _cli_ok('generate', '--outdir', root / 'gen', '--seeds', '0-1', '--steps', 2, '--npz', root / 'gen.npz')
    for name in os.listdir(root):  # {stats8_npz}, {images8}, ...
        paths.setdefault(name.replace('.', '_'), str(root / name))
    return paths


def snapshot(*folders):
    """Every path under `folders` with the size of each file: any new, removed or resized entry shows up."""
    entries = {}
    for folder in folders:
        for base, dirs, files in os.walk(folder):
            for name in dirs:
                entries[os.path.join(base, name)] = 'dir'
            for name in files:
                path = os.path.join(base, name)
                entries[path] = os.path.getsize(path)
    return entries


def run_case(inputs, tmp_path, argv, env=None):
    """Run `python -m edm_bdia ARGV` in this process (offline and with an empty cache unless `env` says
    otherwise); returns click's Result and checks that no file or folder appeared, vanished or changed size."""
    fields = dict(inputs, tmp=str(tmp_path))
    args = [str(arg).format(**fields) for arg in argv]
    before = snapshot(inputs['root'], tmp_path)
    env = {'EDM_BDIA_CACHE_DIR': inputs['cache'], **OFFLINE, **(env or {})}
    result = CliRunner().invoke(main, args, env=env)
    after = snapshot(inputs['root'], tmp_path)
    leftovers = {path: after.get(path) for path in set(before) | set(after) if before.get(path) != after.get(path)}
    assert not leftovers, f'{args} left {leftovers}\n{result.output}'
    return result, fields


def error_line(result):
    """The one `Error:` line of a failed command (and the checks every failure must pass)."""
    assert isinstance(result.exception, SystemExit) and result.exit_code not in (0, None), \
        f'exit {result.exit_code}, exception {result.exception!r}\n{result.output}'
    assert 'Traceback' not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(lines) == 1, result.output
    return lines[0]


# ---- the command lines ------------------------------------------------------------------------------------------

GEN = ['generate', '--outdir', '{tmp}/out', '--seeds', '0-1', '--steps', '2']
TRUST = ['--trust-pickle-code']
FID = ['--detector', '{standin_pkl}', '--trust-pickle-code', '--workers', '0', '--device', 'cpu']
CALC = ['fid', 'calc', *FID, '--ref', '{stats8_npz}', '--num', '2']
REF = ['fid', 'ref', *FID, '--dest', '{tmp}/ref.npz']
INVERT = ['invert', '--images', '{images32}', '--class', '3', '--out', '{tmp}/latents.npz', '--steps', '4']
EDIT = ['edit', '--latents', '{latents_npz}', '--outdir', '{tmp}/edited']
EDIT_IMAGES = ['edit', '--images', '{images32}', '--source-class', '3', '--outdir', '{tmp}/edited', '--steps', '4']


def case(name, argv, *fragments, env=None):
    return pytest.param(argv, fragments, env, id=name)


CLI_CASES = [
    # generate: seeds
    case('gen-seeds-reversed', [*GEN, '--seeds', '5-3'], '--seeds', 'reversed', '3-5'),
    case('gen-seeds-empty', [*GEN, '--seeds', ''], '--seeds', 'no seeds'),
    case('gen-seeds-word', [*GEN, '--seeds', '1,a'], '--seeds', '"a"'),
    case('gen-seeds-beyond-any-run', [*GEN, '--seeds', '0-99999999999999999999999'], '--seeds'),
    case('gen-seeds-ten-billion-held-lazily', [*GEN, '--seeds', '0-9999999999', '--class', '10'], '--class is 10'),
    # generate: sampler settings
    case('gen-steps-1', [*GEN, '--steps', '1'], '--steps', '1'),
    case('gen-steps-word', [*GEN, '--steps', 'many'], '--steps', 'many'),
    case('gen-batch-0', [*GEN, '--batch', '0'], '--batch'),
    case('gen-class-negative', [*GEN, '--class', '-1'], '--class'),
    case('gen-class-too-big', [*GEN, '--class', '10'], '--class is 10', '10 classes'),
    case('gen-class-unconditional', [*GEN, '--network', '{uncond_pkl}', *TRUST, '--class', '0'], '--class is 0',
         'unconditional'),
    case('gen-sigma-order', [*GEN, '--sigma_min', '100', '--sigma_max', '1'], '--sigma_min', '--sigma_max', 'below'),
    case('gen-sigma-max-inf', [*GEN, '--sigma_max', 'inf'], '--sigma_max', 'finite'),
    case('gen-sigma-max-nan', [*GEN, '--sigma_max', 'nan'], '--sigma_max', 'nan'),
    case('gen-sigma-min-zero', [*GEN, '--sigma_min', '0'], '--sigma_min', '> 0'),
    case('gen-sigma-min-negative', [*GEN, '--sigma_min', '-1'], '--sigma_min', '-1'),
    case('gen-rho-zero', [*GEN, '--rho', '0'], '--rho', '> 0'),
    case('gen-rho-nan', [*GEN, '--rho', 'nan'], '--rho'),
    case('gen-rho-inf', [*GEN, '--rho', 'inf'], '--rho'),
    case('gen-churn-noise-nan', [*GEN, '--S_churn', '10', '--S_noise', 'nan'], '--S_noise', 'nan'),
    case('gen-churn-noise-inf', [*GEN, '--S_churn', '10', '--S_noise', 'inf'], '--S_noise', 'inf'),
    case('gen-churn-negative', [*GEN, '--S_churn', '-1'], '--S_churn', '-1'),
    case('gen-churn-nan', [*GEN, '--S_churn', 'nan'], '--S_churn'),
    case('gen-churn-min-nan', [*GEN, '--S_min', 'nan'], '--S_min'),
    case('gen-churn-max-negative', [*GEN, '--S_max', '-1'], '--S_max'),
    case('gen-gamma-above-1', [*GEN, '--gamma', '1.5'], '--gamma', '[0, 1]'),
    case('gen-gamma-nan', [*GEN, '--gamma', 'nan'], '--gamma'),
    case('gen-gamma-word', [*GEN, '--gamma', 'fast'], '--gamma', 'obelm'),
    case('gen-gamma-with-churn', [*GEN, '--gamma', '0.5', '--S_churn', '1'], '--S_churn', 'BDIA'),
    case('gen-gamma-with-solver', [*GEN, '--gamma', '0.5', '--solver', 'euler'], '--gamma', '--solver'),
    case('gen-base-with-disc', [*GEN, '--bdia-base', 'euler', '--disc', 'vp'], '--bdia-base', '--disc'),
    case('gen-base-word', [*GEN, '--bdia-base', 'rk4'], '--bdia-base', 'rk4'),
    case('gen-solver-word', [*GEN, '--solver', 'rk4'], '--solver', 'rk4'),
    case('gen-disc-default-above-sigma-min', [*GEN, '--disc', 've', '--sigma_min', '200'], '--sigma_min',
         "ve discretization's default"),
    case('gen-disc-iddpm-without-levels', [*GEN, '--disc', 'iddpm', '--sigma_min', '30000', '--sigma_max', '40000'],
         '--sigma_min'),
    # generate: device and speed
    case('gen-device-cuda', [*GEN, '--device', 'cuda'], '--device', 'CUDA'),
    case('gen-device-mps', [*GEN, '--device', 'mps'], '--device', 'MPS'),
    case('gen-device-word', [*GEN, '--device', 'tpu'], '--device', 'tpu'),
    case('gen-speed-fp16-on-cpu', [*GEN, '--speed', 'fp16', '--device', 'cpu'], '--speed fp16', 'CUDA'),
    case('gen-compile-with-reference', [*GEN, '--speed', 'reference', '--compile'], '--speed reference',
         '--compile'),
    case('gen-cuda-graphs-on-cpu', [*GEN, '--speed', 'fast', '--cuda-graphs', '--device', 'cpu'], '--cuda-graphs',
         'CUDA'),
    case('gen-tile-0', [*GEN, '--tile', '0'], '--tile'),
    # generate: the network
    case('gen-network-missing', [*GEN, '--network', '{tmp}/no/such.pkl'], '--network', 'no such file'),
    case('gen-network-folder', [*GEN, '--network', '{nets}'], '--network', 'folder', 'cond.pkl'),
    case('gen-network-preset-typo', [*GEN, '--network', 'edm-cifar10-32x32-cond'], '--network',
         'edm-cifar10-32x32-cond-vp'),
    case('gen-network-text-file', [*GEN, '--network', '{text_txt}'], '--network', 'text.txt'),
    case('gen-network-empty-file', [*GEN, '--network', '{empty_pkl}'], '--network', 'empty.pkl'),
    case('gen-network-without-ema', [*GEN, '--network', '{no_ema_pkl}'], '--network', 'ema'),
    case('gen-network-untrusted-code', [*GEN, '--network', '{cond}'], '--network', '--trust-pickle-code'),
    case('gen-network-two-channels', [*GEN, '--network', '{two_channel_pkl}', *TRUST], '--network', '2-channel'),
    case('gen-network-url-offline', [*GEN, '--network', REFUSED_URL], '--network', 'offline', REFUSED_URL,
         cache_path(REFUSED_URL, '{cache}')),
    case('gen-network-preset-offline', [*GEN, '--network', 'edm-cifar10-32x32-cond-vp'], '--network', 'offline',
         PRESET_URL, cache_path(PRESET_URL, '{cache}')),
    case('gen-network-url-refused', [*GEN, '--network', REFUSED_URL], '--network', 'cannot reach 127.0.0.1:9',
         cache_path(REFUSED_URL, '{cache}'), env=ONLINE),
    case('gen-network-url-unresolvable', [*GEN, '--network', UNRESOLVABLE_URL], '--network',
         'cannot reach edm-bdia.invalid', env=ONLINE),
    case('gen-network-nan-images', [*GEN, '--network', '{nan_net_pkl}', *TRUST], 'NaN', 'seed 0', 'seed 1'),
    case('gen-preset-unknown', [*GEN, '--preset', 'edm-mnist'], '--preset', 'edm-mnist'),
    # generate: FID while generating
    case('gen-fid-ref-without-preset', [*GEN, '--fid-ref'], '--fid-ref', '--preset'),
    case('gen-preset-without-fid-ref', [*GEN, '--preset', 'toy-mixture-32x32-cond', '--fid-ref'], '--preset',
         'no FID reference'),
    case('gen-detector-without-fid-ref', [*GEN, '--detector', '{standin_pkl}'], '--detector', '--fid-ref'),
    case('gen-fid-ref-one-seed', [*GEN, '--fid-ref', '{stats8_npz}', '--seeds', '0'], '--fid-ref', '2 seeds'),
    case('gen-fid-ref-missing', [*GEN, '--fid-ref', '{tmp}/none.npz', '--detector', '{standin_pkl}', *TRUST],
         '--fid-ref', 'none.npz'),
    case('gen-fid-ref-wrong-dimension', [*GEN, '--fid-ref', '{stats_dim5_npz}', '--detector', '{standin_pkl}', *TRUST],
         '--fid-ref', '5 features', '8'),
    case('gen-fid-ref-nan', [*GEN, '--fid-ref', '{stats_nan_npz}', '--detector', '{standin_pkl}', *TRUST], '--fid-ref',
         'NaN'),
    case('gen-fid-ref-registry-offline', [*GEN, '--fid-ref', 'cifar10-32x32', '--detector', '{standin_pkl}', *TRUST],
         '--fid-ref', 'offline', '{cache}'),
    case('gen-detector-missing', [*GEN, '--fid-ref', '{stats8_npz}', '--detector', '{tmp}/none.pkl'], '--detector',
         'none.pkl'),
    # generate: outputs
    case('gen-no-output', ['generate', '--seeds', '0-1'], '--outdir', '--fid-ref'),
    case('gen-grid-without-outdir', ['generate', '--fid-ref', '{stats8_npz}', '--grid', '{tmp}/g.png'], '--grid',
         '--outdir'),
    case('gen-resume-without-outdir', ['generate', '--fid-ref', '{stats8_npz}', '--resume'], '--resume', '--outdir'),
    case('gen-outdir-is-a-file', [*GEN, '--outdir', '{a_file}'], '--outdir', 'is a file'),
    case('gen-outdir-under-a-file', [*GEN, '--outdir', '{a_file}/out'], '--outdir', 'not writable'),
    case('gen-grid-under-a-file', [*GEN, '--grid', '{a_file}/grid.png'], '--grid', 'grid.png'),
    case('gen-grid-is-a-folder', [*GEN, '--grid', '{tmp}'], '--grid', 'folder'),
    case('gen-npz-under-a-file', [*GEN, '--npz', '{a_file}/all.npz'], '--npz', 'all.npz'),
    case('gen-npz-is-a-folder', [*GEN, '--npz', '{folder_npz}'], '--npz', 'folder'),
    case('gen-outdir-of-other-settings', [*GEN, '--outdir', '{made_with_2_steps}', '--steps', '3'], '--outdir',
         'different settings', 'num_steps'),
    case('gen-resume-without-manifest', [*GEN, '--outdir', '{no_manifest}', '--resume'], '--outdir',
         'no edm_bdia_manifest.json'),
    case('gen-unreadable-manifest', [*GEN, '--outdir', '{bad_manifest}'], '--outdir', 'cannot read'),
    case('gen-unknown-option', [*GEN, '--sampler', 'heun'], '--sampler'),
    # fid calc
    case('calc-images-missing', [*CALC, '--images', '{tmp}/none'], '--images', 'does not exist'),
    case('calc-images-empty-folder', [*CALC, '--images', '{empty}'], '--images', 'no images'),
    case('calc-images-text-file', [*CALC, '--images', '{text_txt}'], '--images', 'text.txt'),
    case('calc-mixed-sizes-batch-8', [*CALC, '--images', '{mixed}', '--num', '5', '--batch', '8'], '--images',
         'different sizes', 'big.png'),
    case('calc-mixed-sizes-batch-64', [*CALC, '--images', '{mixed}', '--num', '5', '--batch', '64'], '--images',
         'different sizes', 'big.png'),
    case('calc-mixed-sizes-zip', [*CALC, '--images', '{mixed_zip}', '--num', '5'], '--images', 'different sizes'),
    case('calc-fewer-than-default-num', [*CALC[:-2], '--images', '{images8}'], '--num',
         'Found 6 images, but expected at least 50000'),
    case('calc-fewer-than-num', [*CALC, '--images', '{images8}', '--num', '7'], '--num', 'Found 6 images'),
    case('calc-num-1', [*CALC, '--images', '{images8}', '--num', '1'], '--num'),
    case('calc-corrupt-image', [*CALC, '--images', '{corrupt}', '--num', '4'], '--images', 'bad.png'),
    case('calc-npz-of-floats', [*CALC, '--images', '{float_npz}'], '--images', 'uint8'),
    case('calc-npz-without-images', [*CALC, '--images', '{no_arr0_npz}'], '--images', 'arr_0'),
    case('calc-broken-zip', [*CALC, '--images', '{broken_zip}'], '--images', 'broken.zip'),
    case('calc-ref-missing', [*CALC, '--images', '{images8}', '--ref', '{tmp}/none.npz'], '--ref', 'none.npz'),
    case('calc-ref-wrong-dimension', [*CALC, '--images', '{images8}', '--ref', '{stats_dim5_npz}'], '--ref',
         '5 features'),
    case('calc-ref-nan', [*CALC, '--images', '{images8}', '--ref', '{stats_nan_npz}'], '--ref', 'NaN'),
    case('calc-ref-negative-sigma', [*CALC, '--images', '{images8}', '--ref', '{stats_negative_npz}'], '--ref',
         'negative eigenvalue'),
    case('calc-ref-huge', [*CALC, '--images', '{images8}', '--ref', '{stats_huge_npz}'], '--ref', "no detector's"),
    case('calc-decompression-bomb', [*CALC, '--images', '{bomb}'], '--images', '0.png', 'decompression bomb'),
    case('invert-decompression-bomb', [*INVERT, '--images', '{bomb}'], '--images', '0.png', 'decompression bomb'),
    case('calc-ref-not-symmetric', [*CALC, '--images', '{images8}', '--ref', '{stats_asym_npz}'], '--ref',
         'symmetric'),
    case('calc-ref-without-mu', [*CALC, '--images', '{images8}', '--ref', '{stats_no_mu_npz}'], '--ref', "'mu'"),
    case('calc-ref-not-statistics', [*CALC, '--images', '{images8}', '--ref', '{text_txt}'], '--ref', 'text.txt'),
    case('calc-ref-pickle-with-code', [*CALC, '--images', '{images8}', '--ref', '{stats_code_pkl}'], '--ref',
         'stats_code.pkl'),
    case('calc-ref-registry-offline', [*CALC, '--images', '{images8}', '--ref', 'cifar10-32x32'], '--ref',
         'offline', 'cifar10-32x32', '{cache}'),
    case('calc-ref-url-refused', [*CALC, '--images', '{images8}', '--ref', 'http://127.0.0.1:9/ref.npz'], '--ref',
         'cannot reach 127.0.0.1:9', env=ONLINE),
    case('calc-ref-name-typo', [*CALC, '--images', '{images8}', '--ref', 'cifar10-32'], '--ref', 'cifar10-32x32'),
    case('calc-detector-missing', [*CALC, '--images', '{images8}', '--detector', '{tmp}/none.pkl'], '--detector',
         'none.pkl'),
    case('calc-detector-not-weights', [*CALC, '--images', '{images8}', '--detector', '{text_txt}'], '--detector',
         'text.txt'),
    case('calc-detector-untrusted-code', ['fid', 'calc', '--images', '{images8}', '--ref', '{stats8_npz}', '--num', '2',
                                          '--detector', '{standin_pkl}', '--workers', '0'], '--detector',
         '--trust-pickle-code'),
    case('calc-detector-url-offline', [*CALC, '--images', '{images8}', '--detector', 'http://127.0.0.1:9/d.pkl'],
         '--detector', 'offline'),
    case('calc-device-cuda', [*CALC, '--images', '{images8}', '--device', 'cuda'], '--device', 'CUDA'),
    case('calc-device-mps', [*CALC, '--images', '{images8}', '--device', 'mps'], '--device', 'MPS'),
    case('calc-device-word', [*CALC, '--images', '{images8}', '--device', 'gpu'], '--device', 'gpu'),
    case('calc-batch-0', [*CALC, '--images', '{images8}', '--batch', '0'], '--batch'),
    case('calc-workers-negative', [*CALC, '--images', '{images8}', '--workers', '-1'], '--workers'),
    case('calc-fd-method-unknown', [*CALC, '--images', '{images8}', '--fd-method', 'eigh'], '--fd-method', 'eigh'),
    case('calc-seed-word', [*CALC, '--images', '{images8}', '--seed', 'x'], '--seed'),
    case('calc-without-ref', ['fid', 'calc', '--images', '{images8}'], '--ref'),
    # fid ref, refs
    case('ref-quickstart-folder-with-its-grid', [*REF, '--data', '{quickstart}'], '--data', 'different sizes',
         'grid.png'),
    case('ref-data-missing', [*REF, '--data', '{tmp}/none'], '--data', 'does not exist'),
    case('ref-data-empty-folder', [*REF, '--data', '{empty}'], '--data', 'no images'),
    case('ref-one-image', [*REF, '--data', '{one}'], '--data', 'at least 2'),
    case('ref-corrupt-image', [*REF, '--data', '{corrupt}'], '--data', 'bad.png'),
    case('ref-dest-is-a-folder', [*REF, '--data', '{images8}', '--dest', '{folder_npz}'], '--dest', 'folder'),
    case('ref-dest-under-a-file', [*REF, '--data', '{images8}', '--dest', '{a_file}/ref.npz'], '--dest', 'ref.npz'),
    case('ref-device-cuda', [*REF, '--data', '{images8}', '--device', 'cuda'], '--device', 'CUDA'),
    case('ref-detector-missing', [*REF, '--data', '{images8}', '--detector', '{tmp}/none.pt'], '--detector',
         'none.pt'),
    case('ref-without-dest', ['fid', 'ref', '--data', '{images8}'], '--dest'),
    case('refs-extra-argument', ['fid', 'refs', 'cifar10'], 'cifar10'),
    case('fid-unknown-command', ['fid', 'score'], 'score'),
    case('presets-unknown-option', ['presets', '--yaml'], '--yaml'),
    case('main-unknown-command', ['sample', '--outdir', '{tmp}/out'], 'sample'),
    # invert
    case('invert-images-missing', [*INVERT, '--images', '{tmp}/none'], '--images', 'does not exist'),
    case('invert-without-class', ['invert', '--images', '{images32}', '--out', '{tmp}/latents.npz'], '--class',
         'conditional'),
    case('invert-class-too-big', [*INVERT, '--class', '10'], '--class is 10', '10 classes'),
    case('invert-gamma-0', [*INVERT, '--gamma', '0'], '--gamma'),
    case('invert-gamma-above-1', [*INVERT, '--gamma', '2'], '--gamma'),
    case('invert-steps-1', [*INVERT, '--steps', '1'], '--steps'),
    case('invert-sigma-order', [*INVERT, '--sigma_min', '100', '--sigma_max', '1'], '--sigma_min', '--sigma_max'),
    case('invert-sigma-max-inf', [*INVERT, '--sigma_max', 'inf'], '--sigma_max'),
    case('invert-rho-nan', [*INVERT, '--rho', 'nan'], '--rho'),
    case('invert-strength-0', [*INVERT, '--strength', '0'], '--strength'),
    case('invert-strength-nan', [*INVERT, '--strength', 'nan'], '--strength'),
    case('invert-strength-above-1', [*INVERT, '--strength', '1.5'], '--strength'),
    case('invert-base-word', [*INVERT, '--bdia-base', 'rk4'], '--bdia-base'),
    case('invert-out-is-a-folder', [*INVERT, '--out', '{folder_npz}'], '--out', 'folder'),
    case('invert-out-under-a-file', [*INVERT, '--out', '{a_file}/latents.npz'], '--out', 'latents.npz'),
    case('invert-images-wrong-size', [*INVERT, '--images', '{images8}'], '--images', '8x8', '32x32'),
    case('invert-image-truncated', [*INVERT, '--images', '{truncated32}', '--batch', '1'], '--images', '4.png',
         'truncated'),
    case('edit-image-truncated', [*EDIT_IMAGES, '--images', '{truncated32}'], '--images', '4.png', 'truncated'),
    case('invert-images-mixed-sizes', [*INVERT, '--images', '{mixed}'], '--images', 'different sizes'),
    case('invert-npz-labels-out-of-range', ['invert', '--images', '{bad_labels_npz}', '--out', '{tmp}/l.npz'],
         '--images', 'labels'),
    case('invert-npz-labels-float', ['invert', '--images', '{float_labels_npz}', '--out', '{tmp}/l.npz'],
         '--images', 'float64'),
    case('invert-network-missing', [*INVERT, '--network', '{tmp}/none.pkl'], '--network', 'no such file'),
    case('invert-device-cuda', [*INVERT, '--device', 'cuda'], '--device', 'CUDA'),
    case('invert-without-out', ['invert', '--images', '{images32}', '--class', '3'], '--out'),
    # edit
    case('edit-without-source', ['edit', '--outdir', '{tmp}/edited'], '--latents', '--images'),
    case('edit-two-sources', [*EDIT, '--images', '{images32}'], '--latents', '--images'),
    case('edit-latents-missing', [*EDIT, '--latents', '{tmp}/none.npz'], '--latents', 'none.npz'),
    case('edit-latents-not-npz', [*EDIT, '--latents', '{text_txt}'], '--latents', 'invert'),
    case('edit-latents-of-generate', [*EDIT, '--latents', '{gen_npz}'], '--latents', 'not a latents file'),
    case('edit-latents-with-sampler-options', [*EDIT, '--strength', '0.5'], '--strength', 'latents file'),
    case('edit-latents-class-too-big', [*EDIT, '--class', '10'], '--class is 10', '10 classes'),
    case('edit-latents-of-another-network', [*EDIT, '--network', '{cond}', *TRUST], '--latents', 'another network'),
    case('edit-images-without-source-class', ['edit', '--images', '{images32}', '--outdir', '{tmp}/edited'],
         '--source-class', 'conditional'),
    case('edit-images-strength-0', [*EDIT_IMAGES, '--strength', '0'], '--strength'),
    case('edit-images-gamma-0', [*EDIT_IMAGES, '--gamma', '0'], '--gamma'),
    case('edit-images-wrong-size', [*EDIT_IMAGES, '--images', '{images8}'], '--images', '8x8'),
    case('edit-outdir-is-a-file', [*EDIT, '--outdir', '{a_file}'], '--outdir', 'is a file'),
    case('edit-outdir-of-other-settings', [*EDIT, '--outdir', '{edited_as_5}', '--class', '4'], '--outdir',
         'different settings'),
    case('edit-device-mps', [*EDIT, '--device', 'mps'], '--device', 'MPS'),
    case('edit-latents-with-source-class', [*EDIT, '--source-class', '2'], '--source-class', 'latents file'),
    *[case(f'edit-latents-{name}', [*EDIT, '--latents', f'{{latents_{name}_npz}}'], '--latents',
           f'latents_{name}.npz', fragment)
      for name, fragment in (('mixed_labels', 'mix classes'), ('labels_42', 'labels 42 to 42'),
                             ('labels_2d', 'not integers'), ('labels_float', 'not integers'),
                             ('labels_text', 'not integers'), ('state_float16', 'float16'), ('state_int', 'int64'),
                             ('state_complex', 'complex128'), ('settings_not_json', 'not JSON'),
                             ('settings_list', 'not an object'), ('settings_number', 'not an object'),
                             ('settings_no_network', 'no network'), ('settings_no_sigmas', 'noise levels'),
                             ('no_images', 'no images'),
                             ('state_shapes_differ', '[3, 3, 32, 32] and x_next [3, 3, 16, 16]'),
                             ('labels_missing_one', '2 labels'), ('labels_below_minus_one', 'below -1'),
                             ('state_nan', 'NaN or infinite values in x_next'))],
    # outputs that are other outputs or inputs of the same run
    case('generate-batch-beyond-memory', ['generate', '--outdir', '{tmp}/out', '--seeds', '0-999999999', '--batch',
                                          '1000000000'], '--batch', 'float64 sampler state', 'GiB', 'use at most'),
    case('generate-tile-beyond-memory', ['generate', '--outdir', '{tmp}/out', '--seeds', '0-1', '--tile', '1000000000'],
         '--tile', 'GiB', 'use at most'),
    case('generate-grid-is-an-image', ['generate', '--outdir', '{tmp}/out', '--seeds', '0-1', '--grid',
                                       '{tmp}/out/000000.png'], '--grid', 'writes or owns'),
    case('generate-grid-is-the-manifest', ['generate', '--outdir', '{tmp}/out', '--seeds', '0-1', '--grid',
                                           '{tmp}/out/edm_bdia_manifest.json'], '--grid', 'writes or owns'),
    case('generate-npz-is-an-image', ['generate', '--outdir', '{tmp}/out', '--seeds', '0-1', '--npz',
                                      '{tmp}/out/000001.png'], '--npz', 'writes or owns'),
    case('generate-npz-is-the-grid', ['generate', '--outdir', '{tmp}/out', '--seeds', '0-1', '--npz', '{tmp}/x',
                                      '--grid', '{tmp}/x'], '--npz', '--grid', 'same file'),
    case('edit-outdir-is-the-images', [*EDIT_IMAGES, '--outdir', '{images32}'], '--outdir', 'inside the images'),
    case('invert-out-is-the-images', ['invert', '--images', '{gen_npz}', '--out', '{gen_npz}'], '--out',
         'inside the images'),
]


@pytest.mark.parametrize('argv, fragments, env', CLI_CASES)
def test_command_line(inputs, tmp_path, argv, fragments, env):
    result, fields = run_case(inputs, tmp_path, argv, env)
    line = error_line(result)
    for fragment in fragments:
        assert fragment.format(**fields) in line, line


# ---- the Python API ---------------------------------------------------------------------------------------------

def _toy():
    from edm_bdia.analytic import toy_mixture_32x32_cond
    return toy_mixture_32x32_cond()


def _latents(batch=1, size=32):
    return torch.randn([batch, 3, size, size], dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def _labels():
    return torch.eye(10)[[3]]


def _drain(iterator):
    for _ in iterator:
        pass


def api(name, call, error, *fragments):
    return pytest.param(call, error, fragments, id=name)


NAN = float('nan')
INF = float('inf')
EYE4 = np.eye(4)
API_CASES = [
    api('karras-sigma-order', lambda p: sample.karras_sigmas(18, sigma_min=10, sigma_max=1), ValueError,
        'sigma_min', 'sigma_max'),
    api('karras-one-step', lambda p: sample.karras_sigmas(1), ValueError, 'num_steps'),
    api('karras-sigma-max-inf', lambda p: sample.karras_sigmas(18, sigma_max=INF), ValueError, 'sigma_max'),
    api('karras-sigma-min-nan', lambda p: sample.karras_sigmas(18, sigma_min=NAN), ValueError, 'sigma_min'),
    api('karras-outside-the-network', lambda p: sample.karras_sigmas(18, 100, 200, net=p.loaded_nan_net),
        ValueError, 'sigma_min', "network's noise range"),
    api('karras-rho-zero', lambda p: sample.karras_sigmas(18, rho=0), ValueError, 'rho'),
    api('edm-noise-nan', lambda p: sample.edm_sampler(_toy(), _latents(), _labels(), S_churn=10, S_noise=NAN),
        ValueError, 'S_noise'),
    api('edm-latents-shape', lambda p: sample.edm_sampler(_toy(), _latents(size=8), _labels()), ValueError,
        'latents', '32'),
    api('edm-labels-shape', lambda p: sample.edm_sampler(_toy(), _latents(), torch.eye(4)[[0]]), ValueError,
        'class_labels'),
    api('edm-sigma-order', lambda p: sample.edm_sampler(_toy(), _latents(), _labels(), sigma_min=100, sigma_max=1),
        ValueError, 'sigma_min'),
    api('ablation-solver', lambda p: sample.ablation_sampler(_toy(), _latents(), _labels(), solver='rk4'),
        ValueError, 'solver', 'rk4'),
    api('ablation-discretization', lambda p: sample.ablation_sampler(_toy(), _latents(), _labels(),
                                                                     discretization='cosine'), ValueError,
        'discretization'),
    api('ablation-epsilon', lambda p: sample.ablation_sampler(_toy(), _latents(), _labels(), epsilon_s=2),
        ValueError, 'epsilon_s'),
    api('bdia-gamma-above-1', lambda p: sample.bdia_sampler(_toy(), _latents(), _labels(), gamma=2), ValueError,
        'gamma'),
    api('bdia-gamma-word', lambda p: sample.bdia_sampler(_toy(), _latents(), _labels(), gamma='fast'),
        ValueError, 'gamma'),
    api('bdia-base-word', lambda p: sample.bdia_sampler(_toy(), _latents(), _labels(), base='rk4'), ValueError,
        'base'),
    api('bdia-one-step', lambda p: sample.bdia_sampler(_toy(), _latents(), _labels(), num_steps=1), ValueError,
        'num_steps'),
    api('bdia-gamma-nan', lambda p: sample.bdia_sampler(_toy(), _latents(), _labels(), gamma=NAN), ValueError,
        'gamma', 'nan'),
    api('bdia-sigmas-increasing', lambda p: sample.bdia_sampler(_toy(), _latents(), _labels(), sigmas=[1, 2, 0]),
        ValueError, 'sigmas', 'decreasing'),
    api('bdia-start-pair-shape', lambda p: sample.bdia_sample(_toy(), sample.BDIAPair(
        0, _latents(size=8), _latents(size=8)), _labels()), ValueError, 'start', '32'),
    api('bdia-start-step-beyond-the-steps', lambda p: sample.bdia_sample(_toy(), sample.BDIAPair(
        99, _latents(), _latents()), _labels()), ValueError, 'start', '99'),
    api('edm-rho-text', lambda p: sample.edm_sampler(_toy(), _latents(), _labels(), rho='7'), ValueError, 'rho'),
    api('invert-gamma-0', lambda p: sample.bdia_invert(_toy(), sample.BDIAPair(17, _latents(), _latents()), _labels(),
                                                       gamma=0), ValueError, 'gamma'),
    api('edit-strength-above-1', lambda p: sample.bdia_edit(_toy(), _latents().clamp(-1, 1), _labels(), _labels(),
                                                            strength=2), ValueError, 'strength'),
    api('edit-target-labels-shape', lambda p: sample.bdia_edit(_toy(), _latents().clamp(-1, 1), _labels(),
                                                               torch.eye(4)[[0]]), ValueError, 'target_labels'),
    pytest.param(lambda p: sample.bdia_encode(_toy(), _latents() * NAN, _labels()), ValueError, ('images', 'NaN'),
                 id='encode-nan-images'),
    api('encode-gamma-0', lambda p: sample.bdia_encode(_toy(), _latents().clamp(-1, 1), _labels(), gamma=0),
        ValueError, 'gamma'),
    api('edit-strength-0', lambda p: sample.bdia_edit(_toy(), _latents().clamp(-1, 1), _labels(), _labels(),
                                                      strength=0), ValueError, 'strength'),
    api('edit-strength-nan', lambda p: sample.bdia_edit(_toy(), _latents().clamp(-1, 1), _labels(), _labels(),
                                                        strength=NAN), ValueError, 'strength'),
    api('choose-sigma-order', lambda p: generation.choose_sampler(sigma_min=100, sigma_max=1), ValueError,
        'sigma_min', 'sigma_max'),
    api('choose-gamma-with-churn', lambda p: generation.choose_sampler(gamma=0.5, S_churn=1), ValueError,
        'S_churn'),
    api('choose-noise-nan', lambda p: generation.choose_sampler(S_noise=NAN), ValueError, 'S_noise'),
    api('generate-seeds-reversed', lambda p: _drain(generation.generate_images(_toy(), '5-3')), ValueError,
        '3-5'),
    api('generate-class-too-big', lambda p: _drain(generation.generate_images(_toy(), '0-1', class_idx=10)),
        ValueError, 'class_idx'),
    api('generate-network-number', lambda p: _drain(generation.generate_images(42, '0-1')), ValueError,
        'network'),
    api('generate-device-cuda', lambda p: _drain(generation.generate_images(_toy(), '0-1', device='cuda')),
        ValueError, 'device'),
    api('generate-grid-without-outdir', lambda p: _drain(generation.generate_images(
        _toy(), '0-1', grid=str(p.tmp / 'g.png'))), ValueError, 'outdir', 'grid'),
    api('generate-outdir-under-a-file', lambda p: _drain(generation.generate_images(
        _toy(), '0-1', outdir=str(p.tmp / 'a_file' / 'out'))), ValueError, 'outdir'),
    api('generate-sampler-argument-unknown', lambda p: _drain(generation.generate_images(
        _toy(), '0-1', sampler_fn=sample.edm_sampler, gamma=0.5, outdir=str(p.tmp / 'out'))), ValueError, 'gamma',
        'edm_sampler'),
    api('generate-tile-beside-a-plan', lambda p: _drain(generation.generate_images(
        _toy(), '0-1', speed=make_plan('reference', 'cpu'), tile=4)), ValueError, 'tile', 'SpeedPlan'),
    api('generate-nan-images', lambda p: _drain(generation.generate_images(
        p.loaded_nan_net, '0-1', outdir=str(p.tmp / 'out'))), ValueError, 'seed 0'),
    api('invert-images-missing', lambda p: _drain(editing.invert_images(
        _toy(), str(p.tmp / 'none'), str(p.tmp / 'l.npz'), class_idx=3)), ValueError, 'does not exist'),
    api('invert-without-class', lambda p: _drain(editing.invert_images(
        _toy(), p.images32, str(p.tmp / 'l.npz'))), ValueError, 'class_idx'),
    api('invert-batch-0', lambda p: _drain(editing.invert_images(
        _toy(), p.images32, str(p.tmp / 'l.npz'), class_idx=3, max_batch_size=0)), ValueError, 'max_batch_size', '0'),
    api('edit-batch-0', lambda p: _drain(editing.edit_images(
        _toy(), str(p.tmp / 'out'), images=p.images32, source_class=3, max_batch_size=0)), ValueError,
        'max_batch_size', '0'),
    api('edit-without-source', lambda p: _drain(editing.edit_images(_toy(), str(p.tmp / 'out'))), ValueError,
        'latents', 'images'),
    api('edit-latents-not-npz', lambda p: _drain(editing.edit_images(
        _toy(), str(p.tmp / 'out'), latents=str(p.tmp / 'a_file'))), ValueError, 'latents'),
    api('load-network-missing', lambda p: edm_bdia.load_network(str(p.tmp / 'none.pkl')), ValueError,
        'no such file'),
    api('load-network-folder', lambda p: edm_bdia.load_network(str(p.tmp)), ValueError, 'folder'),
    api('load-network-number', lambda p: edm_bdia.load_network(42), TypeError, 'int'),
    api('load-network-untrusted-code', lambda p: edm_bdia.load_network(p.cond), ValueError, 'trust_pickle_code'),
    api('open-url-missing', lambda p: edm_bdia.open_url(str(p.tmp / 'none.pkl')), FileNotFoundError, 'none.pkl'),
    api('open-url-folder', lambda p: edm_bdia.open_url(str(p.tmp)), IsADirectoryError, 'folder'),
    api('open-url-number', lambda p: edm_bdia.open_url(42), TypeError, 'int'),
    api('open-url-offline', lambda p: edm_bdia.open_url(REFUSED_URL, cache_dir=str(p.tmp / 'cache')), OSError,
        'offline', REFUSED_URL, cache_path(REFUSED_URL, '{tmp}/cache')),
    api('frechet-dimensions-differ', lambda p: frechet.frechet_distance(np.zeros(4), EYE4, np.zeros(3), np.eye(3)),
        ValueError, '4', '3'),
    api('frechet-nan', lambda p: frechet.frechet_distance(np.full(4, NAN), EYE4, np.zeros(4), EYE4), ValueError,
        'NaN'),
    api('frechet-not-symmetric', lambda p: frechet.frechet_distance(np.zeros(4), EYE4 + np.triu(EYE4 + 1, 1),
                                                                   np.zeros(4), EYE4), ValueError, 'symmetric'),
    api('frechet-method', lambda p: frechet.frechet_distance(np.zeros(4), EYE4, np.zeros(4), EYE4, method='eigh'),
        ValueError, 'method', 'eigh'),
    api('reference-missing', lambda p: refs.load_reference(str(p.tmp / 'none.npz')), ValueError, 'none.npz'),
    api('reference-registry-offline', lambda p: refs.load_reference('cifar10-32x32'), ValueError, 'offline',
        'cifar10-32x32'),
    api('reference-wrong-dimension', lambda p: refs.check_feature_dims({'fid': (np.zeros(5), np.eye(5))}, {'fid': 8}),
        ValueError, 'reference', '5 features'),
    api('subset-larger-than-set', lambda p: datasets.select_indices(10, 20), ValueError, 'num', '20'),
    api('images-missing', lambda p: datasets.open_images(str(p.tmp / 'none')), ValueError, 'images', 'none'),
    api('edm-latents-on-meta', lambda p: sample.edm_sampler(_toy(), torch.zeros(1, 3, 32, 32, device='meta')),
        ValueError, 'latents', 'meta'),
    api('edm-latents-empty', lambda p: sample.edm_sampler(_toy(), torch.zeros(0, 3, 32, 32)), ValueError, 'latents',
        'at least one sample'),
    api('edm-labels-as-list', lambda p: sample.edm_sampler(_toy(), _latents(), [[1] + [0] * 9]), ValueError,
        'class_labels', 'list'),
    api('edm-net-none', lambda p: sample.edm_sampler(None, _latents()), ValueError, 'net', 'NoneType'),
    api('generate-seeds-int', lambda p: _drain(generation.generate_images(_toy(), 5, device='cpu')), ValueError, 'seeds', '5'),
    api('generate-seeds-float', lambda p: _drain(generation.generate_images(_toy(), [1.5, 2.7], device='cpu')), ValueError,
        'seeds', '1.5'),
    api('generate-class-float', lambda p: _drain(generation.generate_images(_toy(), [1], class_idx=3.5, device='cpu')),
        ValueError, 'class_idx', '3.5'),
    api('generate-batch-0', lambda p: _drain(generation.generate_images(_toy(), [1], max_batch_size=0, device='cpu')),
        ValueError, 'max_batch_size', '0'),
    api('generate-path-network', lambda p: _drain(generation.generate_images(pathlib.Path(p.tmp / 'none.pkl'), [1],
                                                                  device='cpu')), ValueError, 'network', 'none.pkl'),
    api('generate-unknown-option', lambda p: _drain(generation.generate_images(_toy(), [1], sampler='heun', device='cpu')),
        ValueError, 'sampler', 'sampler_fn'),
    api('images-mixed-sizes', lambda p: datasets.check_image_sizes(datasets.open_images(p.mixed), range(5)),
        ValueError, 'images', 'big.png'),
]


@pytest.mark.parametrize('call, error, fragments', API_CASES)
def test_python_api(inputs, tmp_path, monkeypatch, call, error, fragments):
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', inputs['cache'])
    (tmp_path / 'a_file').write_bytes(b'')
    paths = types.SimpleNamespace(**inputs, tmp=tmp_path,
                                  loaded_nan_net=edm_bdia.load_network(inputs['nan_net_pkl'], trust_pickle_code=True))
    before = snapshot(inputs['root'], tmp_path)
    with pytest.raises(error) as caught:
        call(paths)
    assert snapshot(inputs['root'], tmp_path) == before
    message = str(caught.value)
    assert '\n' not in message.strip(), message
    for fragment in fragments:
        assert fragment.format(tmp=tmp_path) in message, message


def test_fid_of_a_set_against_its_own_statistics_is_never_negative(inputs, tmp_path):
    """Fewer images than features: a singular covariance, where EDM's formula gives about -1e-5."""
    result = CliRunner().invoke(main, ['fid', 'ref', *[a.format(**inputs) for a in FID], '--data', inputs['images8'],
                                       '--dest', str(tmp_path / 'own.npz')], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ['fid', 'calc', *[a.format(**inputs) for a in FID], '--images',
                                       inputs['images8'], '--ref', str(tmp_path / 'own.npz'), '--num', '6'],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    fid = float(result.stdout.strip().splitlines()[-1])
    assert 0 <= fid < 1e-9


@pytest.mark.parametrize('command', [GEN, INVERT, EDIT_IMAGES], ids=['generate', 'invert', 'edit'])
def test_a_batch_whose_sampler_state_cannot_fit_is_refused_before_any_work(inputs, tmp_path, monkeypatch, command):
    """The float64 state of the largest batch of NVlabs' split is checked against the memory available. With room
    for 2.5 samples' state, 3 images in batches of at most 3 (one batch of 3) are refused, naming --batch, and in
    batches of at most 2 (2 + 1) they run."""
    from edm_bdia.speed import memory
    available, state_bytes_per_tensor = 2 ** 40, 3 * 32 * 32 * 8  # a fixed 1 TiB: the test does not race the OS
    monkeypatch.setattr(memory, 'available_bytes', lambda device: available)
    monkeypatch.setattr(memory, 'STATE_TENSORS', available / 2.5 / state_bytes_per_tensor)
    argv = [arg.format(**inputs, tmp=tmp_path) for arg in command]
    argv = [*argv, '--seeds', '0-2'] if command is GEN else argv
    refused = CliRunner().invoke(main, [*argv, '--batch', '3'])
    assert refused.exit_code == 1 and 'Error: --batch gives batches of 3 samples' in refused.output, refused.output
    assert not os.path.exists(tmp_path / 'out') and not os.path.exists(tmp_path / 'edited')
    assert not os.path.exists(tmp_path / 'latents.npz.parts')
    _cli_ok(*argv, '--batch', '2')


def test_collections_in_new_folders_are_written_at_the_end(tmp_path):
    """--grid and --npz are checked without creating their folders (a failed run leaves none behind); a run that
    succeeds creates them when it writes."""
    grid, npz = tmp_path / 'new' / 'grid.png', tmp_path / 'other' / 'deep' / 'all.npz'
    _cli_ok('generate', '--outdir', tmp_path / 'out', '--seeds', '0-1', '--steps', 2, '--grid', grid, '--npz', npz)
    assert PIL.Image.open(grid).size == (64, 32) and np.load(npz)['arr_0'].shape == (2, 32, 32, 3)


# ---- manifest claims under a lock ---------------------------------------------------------------------------------

def test_two_claims_racing_on_one_folder_cannot_both_win(tmp_path, monkeypatch):
    """Two runs with different settings claim one folder at the same moment; writing the manifest is slowed down
    so that, without the lock, both would read 'no manifest' and both would write one."""
    write = manifest_module.write_manifest

    def slow_write(outdir, manifest):
        time.sleep(0.3)
        write(outdir, manifest)
    monkeypatch.setattr(manifest_module, 'write_manifest', slow_write)
    outcomes = []

    def claim(steps):
        try:
            manifest_module.claim_outdir(str(tmp_path), dict(num_steps=steps), resume=False, has_images=False)
            outcomes.append(('claimed', steps))
        except ValueError as error:
            outcomes.append(('refused', str(error)))
    threads = [threading.Thread(target=claim, args=(steps,)) for steps in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(kind for kind, _ in outcomes) == ['claimed', 'refused'], outcomes
    assert 'different settings' in [text for kind, text in outcomes if kind == 'refused'][0]


def test_a_refused_run_leaves_the_folder_of_the_run_that_claimed_it(tmp_path):
    """The refused run saw no folder when it started (`fresh`), but another run created and claimed it since."""
    from edm_bdia.runs.folder import claimed
    outdir = str(tmp_path / 'out')
    os.mkdir(outdir)
    assert manifest_module.claim_outdir(outdir, dict(num_steps=2), resume=False, has_images=False)
    with pytest.raises(ValueError, match='different settings'):
        with claimed(outdir, dict(num_steps=3), fresh=True, resume=False):
            pass
    assert manifest_module.read_manifest(outdir) == dict(num_steps=2)


@pytest.mark.slow
def test_two_processes_racing_on_one_outdir_one_is_refused(tmp_path):
    outdir = tmp_path / 'out'
    commands = [[sys.executable, '-m', 'edm_bdia', 'generate', '--outdir', str(outdir), '--seeds', '0-3',
                 '--steps', str(steps)] for steps in (2, 3)]
    processes = [subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for command in commands]
    outputs = [(process.wait(timeout=120), process.communicate()) for process in processes]
    codes = sorted(code for code, _ in outputs)
    assert codes == [0, 1], outputs
    refused = [stderr for code, (_, stderr) in outputs if code == 1][0]
    errors = [line for line in refused.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and '--outdir' in errors[0] and 'different settings' in errors[0], refused
    assert 'Traceback' not in refused


# ---- in their own processes: import cost, offline, torchrun ----------------------------------------------------

# Runs the command line and reports at exit whether torch was imported.
PROBE = ("import atexit, sys; atexit.register(lambda: sys.stderr.write('torch imported: %s\\n' % "
         "('torch' in sys.modules))); from edm_bdia.cli.main import main; main(prog_name='edm_bdia')")


@pytest.mark.parametrize('argv, option', [
    (['generate', '--seeds', '5-3', '--outdir', 'out'], '--seeds'),
    (['generate', '--gamma', '1.5', '--outdir', 'out'], '--gamma'),
    (['generate', '--steps', '1', '--outdir', 'out'], '--steps'),
    (['generate', '--sigma_min', '100', '--sigma_max', '1', '--outdir', 'out'], '--sigma_min'),
    (['generate', '--S_churn', '10', '--S_noise', 'nan', '--outdir', 'out'], '--S_noise'),
    (['generate', '--gamma', '0.5', '--S_churn', '1', '--outdir', 'out'], '--S_churn'),
    (['generate', '--seeds', '0-3'], '--outdir'),
    (['fid', 'calc', '--images', 'x', '--ref', 'y', '--num', '1'], '--num'),
    (['fid', 'calc', '--images', 'x', '--ref', 'y', '--device', 'gpu'], '--device'),
    (['invert', '--images', 'x', '--out', 'y.npz', '--bdia-base', 'rk4'], '--bdia-base'),
    (['invert', '--images', 'x', '--class', '3'], '--out'),
    (['sample'], 'sample'),
], ids=lambda value: '_'.join(value) if isinstance(value, list) else None)
def test_usage_errors_fail_before_torch_is_imported(tmp_path, argv, option):
    result = run([sys.executable, '-c', PROBE, *argv], cwd=tmp_path, timeout=60)
    assert result.returncode in (1, 2), result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and option in errors[0], result.stderr
    assert 'Traceback' not in result.stderr and 'torch imported: False' in result.stderr, result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('command, url', [
    (['generate.py', '--network', 'edm-cifar10-32x32-cond-vp', '--outdir', 'out'], PRESET_URL),
    (['generate.py', '--network', REFUSED_URL, '--outdir', 'out'], REFUSED_URL),
    (['fid.py', 'calc', '--images', 'images', '--ref', 'cifar10-32x32', '--detector', '{standin_pkl}',
      '--trust-pickle-code'], refs.registry()['cifar10-32x32']['url']),
], ids=['generate-preset', 'generate-url', 'fid-calc-registry-name'])
def test_offline_fails_at_once_naming_the_url_and_the_cache_file(inputs, tmp_path, command, url):
    _png(tmp_path / 'images' / '0.png')
    _png(tmp_path / 'images' / '1.png', seed=1)
    cache = tmp_path / 'cache'
    start = time.monotonic()
    result = run([sys.executable, os.path.join(REPO_DIR, command[0]), *[a.format(**inputs) for a in command[1:]]],
                 cwd=tmp_path, timeout=60, EDM_BDIA_OFFLINE='1', EDM_BDIA_CACHE_DIR=str(cache))
    elapsed = time.monotonic() - start
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert result.returncode == 1 and len(errors) == 1, result.stderr
    assert url in errors[0] and cache_path(url, str(cache)) in errors[0], errors[0]
    assert 'Traceback' not in result.stderr and elapsed < 10, (elapsed, result.stderr)
    assert sorted(os.listdir(tmp_path)) == ['images']


def test_fid_with_default_workers_prints_no_warning(inputs, tmp_path):
    """The default --workers fits the CPUs this process may use, so the DataLoader has nothing to warn about."""
    result = run([sys.executable, os.path.join(REPO_DIR, 'fid.py'), 'ref', '--data', inputs['images8'], '--dest',
                  'ref.npz', '--detector', inputs['standin_pkl'], '--trust-pickle-code'], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'Warning' not in result.stderr and 'DataLoader' not in result.stderr, result.stderr


def _torchrun(tmp_path, *args):
    logs = tmp_path / 'logs'
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--rdzv-backend=c10d',
               f'--rdzv-endpoint=127.0.0.1:{free_port()}', '--redirects=3', f'--log-dir={logs}', '-m', 'edm_bdia',
               *map(str, args)]
    result = run(command, cwd=tmp_path, timeout=180)
    outputs = {}
    for base, _dirs, files in os.walk(logs):
        for name in files:
            if name in ('stdout.log', 'stderr.log'):
                rank = os.path.basename(base)
                with open(os.path.join(base, name)) as f:
                    outputs[rank] = outputs.get(rank, '') + f.read()
    return result, outputs


@pytest.mark.slow
@pytest.mark.parametrize('command', [
    ['generate', '--outdir', 'out', '--seeds', '0-3', '--batch', '1', '--steps', '2'],
    ['invert', '--images', '{images8}', '--out', 'latents.npz', '--batch', '1', '--steps', '4'],
], ids=['generate', 'invert'])
def test_one_rank_failing_under_torchrun_stops_every_rank_with_one_line(inputs, tmp_path, command):
    """The network gives NaN on rank 1 only: both ranks exit 1 with the same `Error: rank 1: ...` line."""
    result, outputs = _torchrun(tmp_path, *[a.format(**inputs) for a in command], '--network',
                                inputs['nan_on_rank1_pkl'], '--trust-pickle-code')
    assert result.returncode != 0 and len(outputs) == 2, result.stderr
    lines = []
    for rank, output in outputs.items():
        errors = [line for line in output.splitlines() if line.startswith('Error:')]
        assert len(errors) == 1 and errors[0].startswith('Error: rank 1: '), (rank, output)
        assert 'Traceback' not in output, output
        lines.append(errors[0])
    assert lines[0] == lines[1]
    assert not os.path.exists(tmp_path / 'latents.npz')
    if command[0] == 'generate':  # rank 0's first image is done and kept for --resume; nothing else, no temp file
        assert set(os.listdir(tmp_path / 'out')) <= {'000000.png', manifest_module.MANIFEST_NAME,
                                                     manifest_module.LOCK_NAME}
