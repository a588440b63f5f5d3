"""Full-size published architectures: state_dict layout and parameter counts (docs/networks.md, 'Published
configurations' and 'Golden vectors'). Networks are built on the meta device (shapes only, no memory, no random
init)."""

import ast
import re
from pathlib import Path

import pytest
import torch

from edm_bdia import networks

DATA = Path(__file__).parent / 'data' / 'networks'
KEY_LISTS = sorted(DATA.glob('*.keys.txt'))


def parse_key_list(path):
    """(precond name, kwargs, rows, totals) from a `*.keys.txt` file written from the reference networks."""
    lines = path.read_text().splitlines()
    call = ast.parse(lines[0].split(': ', 1)[1], mode='eval').body
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    header = ' '.join(lines[1:3])
    totals = dict(entries=int(re.search(r'entries: (\d+)', header)[1]),
                  params=int(re.search(r'(\d+) parameters', header)[1]),
                  buffers=int(re.search(r'(\d+) persistent buffers', header)[1]),
                  param_count=int(re.search(r'parameter count[^:]*: ([\d,]+)', header)[1].replace(',', '')),
                  buffer_elements=int(re.search(r'buffer elements: ([\d,]+)', header)[1].replace(',', '')))
    rows = []
    for line in lines:
        if line.startswith('#'):
            continue
        index, key, shape, kind, numel = line.split('\t')
        rows.append((int(index), key, ast.literal_eval(shape), kind, int(numel)))
    return call.func.id, kwargs, rows, totals


def build_on_meta(precond, **kwargs):
    with torch.device('meta'):
        return networks.PERSISTENT_CLASSES[precond](**kwargs)


def layout(net):
    params = dict(net.named_parameters())
    return [(index, key, list(value.shape), 'param' if key in params else 'buffer', value.numel())
            for index, (key, value) in enumerate(net.state_dict().items())]


@pytest.mark.parametrize('path', KEY_LISTS, ids=lambda p: p.name.split('.')[0])
def test_full_size_key_list(path):
    precond, kwargs, rows, totals = parse_key_list(path)
    net = build_on_meta(precond, **kwargs)
    actual = layout(net)
    assert actual == rows  # index, key, shape, param|buffer, numel, in state_dict order
    assert len(actual) == totals['entries']
    assert sum(row[3] == 'param' for row in actual) == totals['params']
    assert sum(row[3] == 'buffer' for row in actual) == totals['buffers']
    assert sum(p.numel() for p in net.parameters()) == totals['param_count']
    assert sum(b.numel() for b in net.buffers()) == totals['buffer_elements']


DDPMPP = dict(model_type='SongUNet', embedding_type='positional', encoder_type='standard', decoder_type='standard',
              channel_mult_noise=1, resample_filter=[1, 1], model_channels=128, channel_mult=[2, 2, 2])
NCSNPP = dict(DDPMPP, embedding_type='fourier', encoder_type='residual', channel_mult_noise=2,
              resample_filter=[1, 3, 3, 1])
ADM = dict(model_type='DhariwalUNet', model_channels=192, channel_mult=[1, 2, 3, 4])
SONG_DEFAULTS = dict(model_type='SongUNet', img_resolution=32, img_channels=3)  # class defaults: [1,2,2,2], 4 blocks


@pytest.mark.parametrize('precond, kwargs, expected', [
    pytest.param('EDMPrecond', dict(DDPMPP, img_resolution=32, img_channels=3, augment_dim=9), 55_733_891,
                 id='edm-cifar10-32x32-uncond-vp'),
    pytest.param('EDMPrecond', dict(NCSNPP, img_resolution=32, img_channels=3, label_dim=10, augment_dim=9),
                 56_400_643, id='edm-cifar10-32x32-cond-ve'),
    pytest.param('EDMPrecond', dict(NCSNPP, img_resolution=32, img_channels=3, augment_dim=9), 56_397_827,
                 id='edm-cifar10-32x32-uncond-ve'),
    pytest.param('EDMPrecond', dict(NCSNPP, img_resolution=64, img_channels=3, augment_dim=9,
                                    channel_mult=[1, 2, 2, 2]), 62_761_091, id='edm-ffhq-64x64-uncond-ve'),
    pytest.param('VPPrecond', dict(SONG_DEFAULTS), 61_804_419, id='baseline-cifar10-32x32-uncond-vp'),
    pytest.param('VEPrecond', dict(SONG_DEFAULTS, embedding_type='fourier', encoder_type='residual',
                                   channel_mult_noise=2, resample_filter=[1, 3, 3, 1]), 62_758_787,
                 id='baseline-cifar10-32x32-uncond-ve'),
    pytest.param('iDDPMPrecond', dict(ADM, img_resolution=64, img_channels=3, label_dim=1000), 295_904_454,
                 id='baseline-imagenet-64x64-cond-adm'),
])
def test_published_parameter_counts(precond, kwargs, expected):
    net = build_on_meta(precond, **kwargs)
    assert sum(p.numel() for p in net.parameters()) == expected
