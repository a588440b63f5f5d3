"""Loading EDM2 snapshots in the published layout (tests/helpers/edm2_snapshots.py): safe and trusted, in a fresh
process without dnnlib, with and without an encoder; the network and encoder for generation; a preset from the
cache; stored EDM2 code without the noise-range interface (docs/checkpoints.md, 'EDM2 snapshots')."""

import copy
import json
import pickle
import textwrap

import pytest
import torch

from edm_bdia.checkpoints import download
from edm_bdia.checkpoints.presets import PRESETS
from edm_bdia.checkpoints.sampler_interface import ContinuousNoiseLevels
from edm_bdia.checkpoints.source import load_network, load_network_and_encoder, load_pickle
from edm_bdia.checkpoints.unpickle import InertPersistentObject, PickleLoadError
from edm_bdia.networks import Precond, StabilityVAEEncoder, StandardRGBEncoder
from edm_bdia.networks.own_torch_utils import own_persistence
from helpers.edm2_reference import formula_weights_
from helpers.edm2_snapshots import importable_dnnlib, write_edm2_snapshot
from helpers.persistence import read_stream, run_python

TINY = dict(img_resolution=8, model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4],
            channels_per_head=16, logvar_channels=8)
# name -> (Precond keywords, encoder or None)
SNAPSHOTS = {
    'img64-like': (dict(TINY, img_channels=3, label_dim=10), StandardRGBEncoder()),
    'img512-like-uncond': (dict(TINY, img_channels=4, label_dim=0), StabilityVAEEncoder(batch_size=4)),
    'without-encoder': (dict(TINY, img_channels=3, label_dim=10, dropout=0.1), None),
}

LOAD_SCRIPT = '''
import json, sys, torch
from edm_bdia.checkpoints.source import load_network_and_encoder, load_pickle
from edm_bdia.networks.own_torch_utils import own_persistence
directory = sys.argv[1]
# a changed source text matches no imported module: the trusted loader must execute every stored source
own_persistence().import_hook(lambda meta: meta.update(module_src=meta.module_src + '\\n# variant') or meta)
report, outputs = {}, {}
for name in json.load(open(f'{directory}/names.json')):
    inputs = torch.load(f'{directory}/{name}.io.pt')
    for mode, trust in (('safe', False), ('trusted', True)):
        data = load_pickle(f'{directory}/{name}.pkl', trust_pickle_code=trust)
        net, encoder = load_network_and_encoder(f'{directory}/{name}.pkl', trust_pickle_code=trust)
        with torch.no_grad():
            outputs[f'{name}/{mode}'] = net(inputs['x'], inputs['sigma'], inputs['labels'])
        loss = data['loss_fn']
        entry = dict(data_type=type(data).__name__, keys=list(data), use_labels=data.dataset_kwargs.use_labels,
                     net=[type(net).__module__, type(net).__name__],
                     dtypes=sorted({str(p.dtype) for p in net.parameters()}),
                     pickled_encoder=None if 'encoder' not in data else type(data['encoder']).__module__,
                     encoder=[type(encoder).__module__, type(encoder).__name__,
                              list(map(float, getattr(encoder, 'scale', [0])))],
                     loss=[type(loss).__name__, loss.P_mean], interface=[net.sigma_min, str(net.sigma_max)])
        if trust:  # the stored loss runs; the training-only modules its source imports are stand-ins
            images = torch.zeros_like(inputs['x'])
            entry['loss_value_shape'] = list(loss(net, images, inputs['labels']).shape)
            try:
                sys.modules[type(loss).__module__].learning_rate(1)
            except ModuleNotFoundError as error:
                entry['training_only'] = str(error)
        report[f'{name}/{mode}'] = entry
torch.save(outputs, f'{directory}/outputs.pt')
report['dnnlib_imported'] = 'dnnlib' in sys.modules
print(json.dumps(report))
'''


@pytest.fixture(scope='module')
def snapshots(tmp_path_factory):
    """Published-layout snapshots with their inputs and the float16 networks' outputs."""
    directory = tmp_path_factory.mktemp('edm2-snapshots')
    with importable_dnnlib(tmp_path_factory.mktemp('dnnlib')) as dnnlib:
        for name, (kwargs, encoder) in SNAPSHOTS.items():
            net = formula_weights_(Precond(**kwargs)).eval()
            write_edm2_snapshot(directory / f'{name}.pkl', net, encoder, dnnlib)
            x = torch.randn(2, kwargs['img_channels'], 8, 8, generator=torch.Generator().manual_seed(1))
            inputs = dict(x=x, sigma=torch.tensor([0.05, 9.0]),
                          labels=torch.eye(10)[[2, 5]] if kwargs['label_dim'] else None)
            with torch.no_grad():
                inputs['expected'] = copy.deepcopy(net).to(torch.float16)(inputs['x'], inputs['sigma'],
                                                                          inputs['labels'])
            torch.save(inputs, directory / f'{name}.io.pt')
    (directory / 'names.json').write_text(json.dumps(list(SNAPSHOTS)))
    return directory


def test_published_layout(snapshots):
    """What the stream holds: an EasyDict of dnnlib, persistent objects under NVlabs' class names, float16."""
    metas, stream_globals, data = read_stream((snapshots / 'img512-like-uncond.pkl').read_bytes())
    names = [meta['class_name'] for meta in metas]
    assert list(data) == ['encoder', 'dataset_kwargs', 'loss_fn', 'ema']
    assert ('dnnlib.util', 'EasyDict') in stream_globals
    assert not any(module.startswith('edm_bdia') for module, _ in stream_globals)
    assert set(names) == {'StabilityVAEEncoder', 'EDM2Loss', 'Precond', 'UNet', 'Block', 'MPConv', 'MPFourier'}
    ema = data['ema']['state']
    assert ema['_init_kwargs'] == SNAPSHOTS['img512-like-uncond'][0] and ema['training'] is False
    assert data['encoder']['state']['_vae'] is None and data['encoder']['state']['_init_kwargs'] == dict(batch_size=4)
    assert data['loss_fn']['state']['P_mean'] == -0.4


def test_fresh_process_without_dnnlib_loads_safe_and_trusted(snapshots):
    report = json.loads(run_python(LOAD_SCRIPT, args=(snapshots,), cwd=snapshots).splitlines()[-1])
    outputs = torch.load(snapshots / 'outputs.pt')
    assert report.pop('dnnlib_imported') is False
    for name, (_, encoder) in SNAPSHOTS.items():
        expected = torch.load(snapshots / f'{name}.io.pt')['expected']
        safe, trusted = report[f'{name}/safe'], report[f'{name}/trusted']
        for mode, entry in (('safe', safe), ('trusted', trusted)):
            assert torch.equal(outputs[f'{name}/{mode}'], expected), f'{name}/{mode}'
            assert entry['data_type'] == 'EasyDict' and entry['use_labels'] is True
            assert entry['keys'] == (['encoder'] if encoder else []) + ['dataset_kwargs', 'loss_fn', 'ema']
            assert entry['dtypes'] == ['torch.float16']  # as pickled
            assert entry['interface'] == [0, 'inf']
            # the encoder for generation is always edm_bdia's (a missing one is the standard RGB encoder)
            expected_encoder = type(encoder).__name__ if encoder else 'StandardRGBEncoder'
            assert entry['encoder'][:2] == ['edm_bdia.networks.encoders', expected_encoder]
            if isinstance(encoder, StabilityVAEEncoder):
                assert entry['encoder'][2] == encoder.scale.tolist()
        assert safe['net'] == ['edm_bdia.networks.edm2_precond', 'Precond']
        assert safe['loss'] == ['InertPersistentObject', -0.4]
        assert trusted['net'][0].startswith('_imported_module_') and trusted['net'][1] == 'Precond'
        channels = SNAPSHOTS[name][0]['img_channels']
        assert trusted['loss'] == ['EDM2Loss', -0.4] and trusted['loss_value_shape'] == [2, channels, 8, 8]
        assert 'dnnlib is not available here' in trusted['training_only']
        if encoder is not None:
            assert safe['pickled_encoder'] == 'edm_bdia.networks.encoders'
            assert trusted['pickled_encoder'].startswith('_imported_module_')  # the stored code, as NVlabs loads it


def test_safe_load_in_process(snapshots, one_thread):
    data = load_pickle(snapshots / 'img512-like-uncond.pkl')
    assert data.dataset_kwargs.path == 'datasets/img64.zip' and data['ema'] is data.ema
    assert isinstance(data.loss_fn, InertPersistentObject) and data.loss_fn.sigma_data == 0.5
    assert isinstance(data.encoder, StabilityVAEEncoder) and data.encoder.batch_size == 4
    assert data.encoder._vae is None
    net, encoder = load_network_and_encoder(snapshots / 'img512-like-uncond.pkl')
    assert isinstance(net, Precond) and encoder.batch_size == 4 and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    inputs = torch.load(snapshots / 'img512-like-uncond.io.pt')
    with torch.no_grad():
        assert torch.equal(net(inputs['x'], inputs['sigma']), inputs['expected'])
    assert isinstance(load_network_and_encoder(snapshots / 'without-encoder.pkl')[1], StandardRGBEncoder)


def test_preset_from_the_download_cache_offline(snapshots, tmp_path, monkeypatch):
    url = PRESETS['edm2-img64-s-fid'].net
    (tmp_path / f'{download.url_md5(url)}_{download.safe_name(url)}').write_bytes(
        (snapshots / 'img64-like.pkl').read_bytes())
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path))
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    net, encoder = load_network_and_encoder('edm2-img64-s-fid')
    inputs = torch.load(snapshots / 'img64-like.io.pt')
    with torch.no_grad():
        assert torch.equal(net(inputs['x'], inputs['sigma'], inputs['labels']), inputs['expected'])
    assert isinstance(encoder, StandardRGBEncoder)
    with pytest.raises(download.DownloadError, match='EDM_BDIA_OFFLINE'):
        load_network(PRESETS['edm2-img64-s-fid'].gnet or PRESETS['edm2-img64-s-autog-fid'].gnet)


def test_builtin_and_edm_networks_get_the_standard_encoder():
    net, encoder = load_network_and_encoder('toy-mixture-32x32-cond')
    assert net.img_resolution == 32 and isinstance(encoder, StandardRGBEncoder)


FOREIGN_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence


    @persistence.persistent_class
    class Precond(torch.nn.Module):
        def __init__(self, img_resolution, img_channels, label_dim):
            super().__init__()
            self.img_resolution, self.img_channels, self.label_dim = img_resolution, img_channels, label_dim
            self.gain = torch.nn.Parameter(torch.tensor(0.5))

        def forward(self, x, sigma, class_labels=None):
            return x * self.gain / (1 + sigma.reshape(-1, 1, 1, 1) ** 2)
''')


def test_stored_code_without_the_noise_range_interface_is_wrapped(tmp_path):
    """NVlabs' own EDM2 Precond (trusted) has no sigma_min, sigma_max or round_sigma: edm_bdia supplies EDM's
    continuous ones around it."""
    module = own_persistence()._src_to_module(FOREIGN_SRC)  # defines the class from the text, as unpickling does
    original = module.Precond(img_resolution=8, img_channels=3, label_dim=0).eval()
    path = tmp_path / 'foreign.pkl'
    path.write_bytes(pickle.dumps(dict(ema=original)))
    net = load_network(path, trust_pickle_code=True)
    assert isinstance(net, ContinuousNoiseLevels) and type(net.net).__name__ == 'Precond'
    assert (net.sigma_min, net.sigma_max, net.img_resolution, net.img_channels) == (0, float('inf'), 8, 3)
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64)
    assert torch.equal(net.round_sigma(sigma), sigma) and net.round_sigma(sigma).dtype == torch.float64
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(net(x, sigma), original(x, sigma)) and net.gain.item() == 0.5
    with pytest.raises(PickleLoadError, match='does not match edm_bdia|cannot build Precond'):
        load_network(path)  # safe mode: edm_bdia's Precond cannot take this one's arguments and tensors
