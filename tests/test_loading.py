"""edm_bdia.checkpoints: NVlabs-format snapshots of every preconditioner and architecture, loaded in fresh processes
safely and trusted (also behind a foreign `torch_utils`), refusal of code-carrying pickles, clear errors, and a
checkpoint resolved and read once (its sha256 from the same read)."""

import hashlib
import importlib
import json
import os
import pickle
import sys

import pytest
import torch

from edm_bdia import analytic
from edm_bdia.checkpoints import download, source
from edm_bdia.checkpoints.hashing import sha256_state
from edm_bdia.checkpoints.presets import PRESETS
from edm_bdia.checkpoints.source import load_network, load_pickle, resolve_checkpoint
from edm_bdia.checkpoints.unpickle import InertPersistentObject, PickleLoadError
from edm_bdia.networks import EDMPrecond, VEPrecond, VPPrecond, iDDPMPrecond
from torch_utils import persistence
from helpers.persistence import (TRAINING_MODULE, run_python, training_snapshot, write_foreign_torch_utils,
                                       write_training_module)

RES = 8
SONG = dict(model_type='SongUNet', model_channels=8, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])
DDPMPP = dict(SONG, embedding_type='positional', encoder_type='standard', decoder_type='standard',
              channel_mult_noise=1, resample_filter=[1, 1])
NCSNPP = dict(SONG, embedding_type='fourier', encoder_type='residual', decoder_type='standard',
              channel_mult_noise=2, resample_filter=[1, 3, 3, 1])
ADM = dict(model_type='DhariwalUNet', model_channels=64, channel_mult=[1, 1], num_blocks=1, attn_resolutions=[4],
           channel_mult_emb=1)
# name -> (preconditioner, kwargs): every preconditioner and architecture, conditional and unconditional
NETWORKS = {
    'edm-ddpmpp-cond': (EDMPrecond, dict(label_dim=10, augment_dim=9, dropout=0.13, **DDPMPP)),
    'edm-ncsnpp-uncond': (EDMPrecond, dict(augment_dim=9, **NCSNPP)),
    'edm-adm-cond': (EDMPrecond, dict(label_dim=10, **ADM)),
    'vp-ddpmpp-uncond': (VPPrecond, dict(DDPMPP)),
    've-ncsnpp-skip-cond': (VEPrecond, dict(NCSNPP, label_dim=10, encoder_type='skip', decoder_type='skip')),
    'iddpm-adm-cond': (iDDPMPrecond, dict(label_dim=10, **ADM)),
}

LOAD_SCRIPT = '''
import json, pickle, sys, torch
from edm_bdia.checkpoints.source import load_network, load_pickle
from edm_bdia.networks.own_torch_utils import aliased_torch_utils, own_persistence
directory, force_exec = sys.argv[1], sys.argv[2] == 'exec'
if force_exec:  # a changed source text cannot match an imported module: the trusted loader must exec it
    own_persistence().import_hook(lambda meta: meta.update(module_src=meta.module_src + '\\n# variant') or meta)
report, outputs = {}, {}
for name in json.load(open(f'{directory}/names.json')):
    inputs = torch.load(f'{directory}/{name}.io.pt')
    for mode, trust in (('safe', False), ('trusted', True)):
        data = load_pickle(f'{directory}/{name}.pkl', trust_pickle_code=trust)
        net = load_network(f'{directory}/{name}.pkl', trust_pickle_code=trust)
        outputs[f'{name}/{mode}'] = net(inputs['x'], inputs['sigma'], inputs['labels'])
        report[f'{name}/{mode}'] = dict(
            net_module=type(net).__module__, net_class=type(net).__name__,
            loss=[type(data['loss_fn']).__name__, data['loss_fn'].P_mean],
            augment=None if data['augment_pipe'] is None else [type(data['augment_pipe']).__name__, data['augment_pipe'].p],
            dataset_kwargs=data['dataset_kwargs'], training=net.training,
            requires_grad=any(p.requires_grad for p in net.parameters()))
    with aliased_torch_utils():  # write NVlabs-format pickles again, whatever torch_utils is public
        blob = pickle.dumps(load_pickle(f'{directory}/{name}.pkl', trust_pickle_code=True))
    with open(f'{directory}/{name}.again.pkl', 'wb') as f:
        f.write(blob)
    outputs[f'{name}/again'] = load_network(f'{directory}/{name}.again.pkl')(inputs['x'], inputs['sigma'], inputs['labels'])
torch.save(outputs, f'{directory}/outputs.pt')
import torch_utils
report['public_torch_utils_is_foreign'] = getattr(torch_utils, 'FOREIGN', False)
report['tiny_training_imported'] = 'tiny_training' in sys.modules
report['compiler_imported'] = 'torch._dynamo' in sys.modules
print(json.dumps(report))
'''


@pytest.fixture(scope='module')
def snapshots(tmp_path_factory):
    """Snapshots written like NVlabs' training loop, with the inputs and the original networks' outputs."""
    directory = tmp_path_factory.mktemp('snapshots')
    training_dir = write_training_module(tmp_path_factory.mktemp('training'))
    sys.path.insert(0, str(training_dir))
    try:
        training = importlib.import_module(TRAINING_MODULE)
        for index, (name, (precond, kwargs)) in enumerate(NETWORKS.items()):
            torch.manual_seed(index)
            net = precond(img_resolution=RES, img_channels=3, **kwargs)
            augment_pipe = training.AugmentPipe(p=0.12) if kwargs.get('augment_dim') else None
            data = training_snapshot(ema=net, loss_fn=training.EDMLoss(P_mean=-1.0 - index), augment_pipe=augment_pipe,
                                     dataset_kwargs=dict(path=f'{name}.zip', use_labels=bool(net.label_dim)))
            inputs = dict(x=torch.randn(2, 3, RES, RES), sigma=torch.tensor([0.02, 7.0]),
                          labels=torch.eye(10)[[3, 7]] if net.label_dim else None)
            inputs['expected'] = data['ema'](inputs['x'], inputs['sigma'], inputs['labels'])
            torch.save(inputs, directory / f'{name}.io.pt')
            with open(directory / f'{name}.pkl', 'wb') as file:
                pickle.dump(data, file)
    finally:
        sys.path.remove(str(training_dir))
        sys.modules.pop(TRAINING_MODULE, None)
    (directory / 'names.json').write_text(json.dumps(list(NETWORKS)))
    return directory


def _load_in_fresh_process(directory, pythonpath, mode):
    stdout = run_python(LOAD_SCRIPT, args=(directory, mode), pythonpath=pythonpath, cwd=directory)
    report = json.loads(stdout.splitlines()[-1])
    return report, torch.load(directory / 'outputs.pt')


def _check_loaded(snapshots, report, outputs, trusted_module_prefix):
    for index, (name, (precond, kwargs)) in enumerate(NETWORKS.items()):
        expected = torch.load(snapshots / f'{name}.io.pt')['expected']
        for mode in ('safe', 'trusted', 'again'):
            assert torch.equal(outputs[f'{name}/{mode}'], expected), f'{name}/{mode}'
        safe, trusted = report[f'{name}/safe'], report[f'{name}/trusted']
        assert safe['net_module'] == 'edm_bdia.networks.precond' and safe['net_class'] == precond.__name__
        assert trusted['net_module'].startswith(trusted_module_prefix) and trusted['net_class'] == precond.__name__
        assert safe['loss'] == ['InertPersistentObject', -1.0 - index] and trusted['loss'] == ['EDMLoss', -1.0 - index]
        if kwargs.get('augment_dim'):
            assert safe['augment'] == ['InertPersistentObject', 0.12] and trusted['augment'] == ['AugmentPipe', 0.12]
        for loaded in (safe, trusted):
            assert loaded['dataset_kwargs'] == dict(path=f'{name}.zip', use_labels='label_dim' in kwargs)
            assert loaded['training'] is False and loaded['requires_grad'] is False


def test_fresh_process_loads_every_architecture_safe_and_trusted_with_equal_outputs(snapshots):
    report, outputs = _load_in_fresh_process(snapshots, pythonpath=(), mode='exec')
    _check_loaded(snapshots, report, outputs, trusted_module_prefix='_imported_module_')
    assert report['tiny_training_imported'] is False  # never on the path: its classes came from exec'd source
    # the safe loader builds on the meta device without arithmetic there (which would import torch's compiler, ~1 s)
    assert report['compiler_imported'] is False


def test_fresh_process_with_foreign_torch_utils_first_on_path(snapshots, tmp_path):
    foreign = write_foreign_torch_utils(tmp_path)
    report, outputs = _load_in_fresh_process(snapshots, pythonpath=[foreign], mode='plain')
    # unchanged sources map to the modules already imported (NVlabs semantics): edm_bdia.networks for the nets
    _check_loaded(snapshots, report, outputs, trusted_module_prefix='edm_bdia.networks.')
    assert report['public_torch_utils_is_foreign'] is True


def _pickle_with_meta(path, **meta):
    """A pickle whose 'ema' is one persistent object with the given meta fields (defaults: a valid header)."""
    class Crafted:
        def __reduce__(self):
            return persistence._reconstruct_persistent_obj, (dict(dict(type='class', version=6), **meta),)
    with open(path, 'wb') as file:
        pickle.dump(dict(ema=Crafted()), file)
    return path


@pytest.mark.parametrize('class_name', ['Evil', 'EDMPrecond'])
def test_safe_loader_never_runs_embedded_code(tmp_path, class_name):
    marker = tmp_path / 'marker'
    source = f'import pathlib\npathlib.Path({str(marker)!r}).write_text("ran")\nclass {class_name}:\n    pass\n'
    path = _pickle_with_meta(tmp_path / 'evil.pkl', module_src=source, class_name=class_name, state={})
    with pytest.raises(PickleLoadError, match=class_name if class_name == 'Evil' else '_init_kwargs') as error:
        load_network(path)
    assert not marker.exists()
    if class_name == 'Evil':
        assert 'allow `trust_pickle_code`' in str(error.value) and '--' not in str(error.value)  # no command-line words
        load_pickle(path, trust_pickle_code=True)  # the control: the same file does run code when trusted
        assert marker.read_text() == 'ran'


def test_safe_loader_refuses_foreign_globals(tmp_path):
    marker = tmp_path / 'marker'

    class Exploit:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)
    path = tmp_path / 'exploit.pkl'
    path.write_bytes(pickle.dumps(dict(ema=Exploit())))
    with pytest.raises(PickleLoadError, match=r'\bsystem\b.*not on the allow-list.*allow `trust_pickle_code`'):
        load_network(path)
    assert not marker.exists()


def test_state_that_does_not_fit_our_implementation_is_reported(snapshots, tmp_path):
    data = load_pickle(snapshots / 'edm-ddpmpp-cond.pkl', trust_pickle_code=True)
    data['ema']._init_kwargs['model_channels'] = 16  # our rebuild now has other shapes than the stored tensors
    path = tmp_path / 'mismatch.pkl'
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(PickleLoadError, match=r"does not match edm_bdia's implementation \(\d+ difference\(s\), first: model\.\S+ has shape \[8, 10\] in the pickle, \[16, 10\] here\)"):
        load_network(path)


@pytest.mark.parametrize('content, message', [
    (b'', 'the file is empty'),
    (b'hello, not a pickle', 'not a pickle file'),
    (b'PK\x03\x04zipdata', 'zip archive'),
])
def test_non_pickle_files(tmp_path, content, message):
    path = tmp_path / 'bad.pkl'
    path.write_bytes(content)
    with pytest.raises(PickleLoadError, match=message):
        load_network(path)


@pytest.mark.parametrize('trust', [False, True])
def test_truncated_file(snapshots, tmp_path, trust):
    blob = (snapshots / 'edm-ddpmpp-cond.pkl').read_bytes()
    path = tmp_path / 'truncated.pkl'
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(PickleLoadError, match='truncated or corrupt.*download it again'):
        load_network(path, trust_pickle_code=trust)


@pytest.mark.parametrize('trust', [False, True])
def test_wrong_format_version(tmp_path, trust):
    path = _pickle_with_meta(tmp_path / 'v5.pkl', version=5, module_src='class EDMLoss:\n    pass\n',
                             class_name='EDMLoss', state={})
    with pytest.raises(PickleLoadError, match='version 5'):
        load_pickle(path, trust_pickle_code=trust)


def test_snapshot_without_ema(tmp_path):
    path = tmp_path / 'no_ema.pkl'
    path.write_bytes(pickle.dumps(dict(net=None, dataset_kwargs={})))
    with pytest.raises(PickleLoadError, match='no "ema" network.*dataset_kwargs, net.*training snapshot'):
        load_network(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(PickleLoadError, match='found a list'):
        load_network(path)


def test_missing_file_points_to_presets(tmp_path):
    with pytest.raises(PickleLoadError, match='no such file.*python -m edm_bdia presets'):
        load_network(tmp_path / 'nothing.pkl')
    with pytest.raises(PickleLoadError, match='did you mean the preset edm-cifar10-32x32-cond-vp'):
        load_network('edm-cifar10-32x32-cond-pv')


def test_a_folder_is_called_a_folder_and_its_pickles_are_listed(tmp_path):
    with pytest.raises(PickleLoadError, match='is a folder, not a checkpoint file, and holds no .pkl file'):
        load_network(tmp_path)
    for step in (0, 200, 400, 600):
        (tmp_path / f'network-snapshot-{step:06d}.pkl').write_bytes(b'')
    with pytest.raises(PickleLoadError, match=r'is a folder, not a checkpoint file; pass one of its .pkl files: '
                                              r'network-snapshot-000200.pkl, network-snapshot-000400.pkl, '
                                              r'network-snapshot-000600.pkl \(and 1 more\)'):
        resolve_checkpoint(str(tmp_path))


def test_inert_objects_keep_their_data_but_cannot_run():
    loss = InertPersistentObject('EDMLoss', dict(P_mean=-1.2, P_std=1.2))
    assert loss.P_mean == -1.2 and loss.class_name == 'EDMLoss'
    with pytest.raises(AttributeError, match='sigma_data'):
        _ = loss.sigma_data
    with pytest.raises(TypeError, match='safe mode.*allow `trust_pickle_code`'):
        loss(None)


def test_preset_name_loads_from_the_download_cache_offline(snapshots, tmp_path, monkeypatch):
    url = PRESETS['edm-cifar10-32x32-cond-vp'].url
    cached = tmp_path / f'{download.url_md5(url)}_{download.safe_name(url)}'
    cached.write_bytes((snapshots / 'edm-ddpmpp-cond.pkl').read_bytes())
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path))
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')  # a cache miss would fail at once
    inputs = torch.load(snapshots / 'edm-ddpmpp-cond.io.pt')
    net = load_network('edm-cifar10-32x32-cond-vp', device='cpu')
    assert torch.equal(net(inputs['x'], inputs['sigma'], inputs['labels']), inputs['expected'])


def test_checkpoint_is_read_once_and_hashed_on_the_way(snapshots, tmp_path, monkeypatch):
    blob = (snapshots / 'edm-ddpmpp-cond.pkl').read_bytes() + b'trailing bytes after the pickle'
    path = tmp_path / 'snapshot.pkl'
    path.write_bytes(blob)
    url = PRESETS['edm-cifar10-32x32-cond-vp'].url
    (tmp_path / f'{download.url_md5(url)}_{download.safe_name(url)}').write_bytes(blob)
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(source, 'sha256_file', lambda path: pytest.fail('the file was read a second time'))
    for name in (str(path), path.as_uri(), 'edm-cifar10-32x32-cond-vp'):
        checkpoint = resolve_checkpoint(name)
        net = checkpoint.load_network(device='cpu')
        assert isinstance(net, EDMPrecond) and checkpoint.source == name
        assert checkpoint.sha256 == hashlib.sha256(blob).hexdigest()  # the whole file, trailing bytes included
    assert checkpoint.url == url and checkpoint.preset is PRESETS[name]


def test_sha256_before_loading_reads_the_file_itself(snapshots):
    checkpoint = resolve_checkpoint(str(snapshots / 'edm-ddpmpp-cond.pkl'))
    assert checkpoint.sha256 == hashlib.sha256((snapshots / 'edm-ddpmpp-cond.pkl').read_bytes()).hexdigest()


def test_toy_model_name_returns_the_builtin_model():
    net = load_network(analytic.TOY_MODEL_NAME)
    reference = analytic.toy_mixture_32x32_cond()
    x, sigma = torch.randn(2, 3, 32, 32, dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64)
    labels = torch.eye(10)[[1, 2]]
    assert (net.img_resolution, net.img_channels, net.label_dim) == (32, 3, 10)
    assert torch.equal(net(x, sigma, labels), reference(x, sigma, labels))
    assert load_pickle(analytic.TOY_MODEL_NAME).keys() == {'ema'}
    checkpoint = resolve_checkpoint(analytic.TOY_MODEL_NAME)
    assert checkpoint.builtin and checkpoint.path is None
    assert checkpoint.sha256 == sha256_state(reference)  # no file: the identity is the hash of its tensors
    perturbed = analytic.toy_mixture_32x32_cond(seed=1)
    assert sha256_state(perturbed) != checkpoint.sha256
