"""EDM2 networks (docs/networks.md, 'EDM2'): goldens of NVlabs' networks_edm2.py reproduced bit for bit, a float64
restatement of the formulas, the published layouts and sizes, the noise-range interface, the fp16 split and the
frozen weight normalisation."""

import copy
import functools
import json
import pickle
from pathlib import Path

import pytest
import torch

from edm_bdia.networks import MPConv, Precond
from edm_bdia.networks.edm2_block import resample
from edm_bdia.networks.edm2_published import EDM2_ARCHITECTURES, build_edm2_published
from edm_bdia.networks.mp_layers import normalize
from edm_bdia.networks.own_torch_utils import aliased_torch_utils
from helpers.edm2_reference import ReferenceEDM2, expected_state_keys, formula_weights_

DATA = Path(__file__).parent / 'data' / 'networks' / 'edm2'
GOLDENS = sorted(DATA.glob('*.pt'))
COUNTS = json.loads((DATA / 'parameter-counts.json').read_text())
# Karras et al. 2024, Table 2 (Mparams): XS 125, S 280, M 498, L 778, XL 1119, XXL 1523
PAPER_MPARAMS = dict(xs=125, s=280, m=498, l=778, xl=1119, xxl=1523)


@functools.lru_cache(maxsize=None)
def golden(path):
    return torch.load(path, weights_only=True)


def golden_net(path):
    data = golden(path)
    net = formula_weights_(Precond(**data['kwargs'])).eval().requires_grad_(False)
    return net.to(getattr(torch, data['weights_dtype']))  # the published pickles store float16 tensors


def reference_arithmetic_here():
    """True where torch's kernels round like the machine that wrote the goldens (torch 2.13.0, AVX512, one thread,
    AMD EPYC Zen 4): the UNet input c_in·x, a one-line formula that involves none of our network code, must come out
    bit for bit (docs/networks.md, 'Golden vectors' explains why the CPU model matters)."""
    if torch.backends.cpu.get_cpu_capability() != 'AVX512' or torch.__version__.split('+')[0] != '2.13.0':
        return False
    data = golden(GOLDENS[0])
    sigma = data['sigma'].reshape(-1, 1, 1, 1)
    with single_thread():
        return torch.equal(data['x'] * (1 / (0.5 ** 2 + sigma ** 2).sqrt()), data['debug']['unet_in'])


class single_thread:  # pylint: disable=invalid-name
    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


EXACT = reference_arithmetic_here()


def assert_matches(actual, expected, scale=1.0):
    if EXACT:
        assert torch.equal(actual, expected)
    else:  # other kernels: float32 rounding differences only
        torch.testing.assert_close(actual, expected, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize('path', GOLDENS, ids=lambda p: p.stem)
def test_golden_outputs(path, one_thread):
    data = golden(path)
    net = golden_net(path)
    assert [[key, list(value.shape), str(value.dtype)] for key, value in net.state_dict().items()] == data['rows']
    captured = {}
    net.unet.register_forward_hook(lambda _m, args, out: captured.update(unet_in=args[0], c_noise=args[1], F=out))
    with torch.no_grad():
        out, logvar = net(data['x'], data['sigma'], data['labels'], return_logvar=True)
        assert_matches(captured['unet_in'], data['debug']['unet_in'])
        assert_matches(captured['c_noise'], data['debug']['c_noise'])
        assert_matches(captured['F'], data['debug']['F'], scale=10)
        assert_matches(out, data['out'], scale=10)
        assert_matches(logvar, data['logvar'])
        # the EDM sampler's call: float64 x and a 0-dim float64 sigma
        scalar = net(data['x'].to(torch.float64), torch.tensor(2.5, dtype=torch.float64), data['labels'])
        assert scalar.dtype == torch.float32
        assert_matches(scalar, data['out_scalar_sigma'], scale=10)
        if 'out_nolabels' in data:  # a conditional net without labels: the zero label embedding
            assert_matches(net(data['x'], data['sigma']), data['out_nolabels'], scale=10)


@pytest.mark.parametrize('path', GOLDENS, ids=lambda p: p.stem)
def test_float64_restatement(path, one_thread):
    """Our float32 network against the formulas in float64 (tests/helpers/edm2_reference.py): equal up to float32
    rounding, and for the float16 pickle up to the float16 gains, which the reference arithmetic rounds (the
    output gain is formed as gain / sqrt(fan_in) in the gain's dtype)."""
    data = golden(path)
    net = golden_net(path)
    reference = ReferenceEDM2(data['kwargs'], net.state_dict())
    with torch.no_grad():
        out, logvar = net(data['x'], data['sigma'], data['labels'], return_logvar=True)
    expected, expected_logvar = reference(data['x'], data['sigma'], data['labels'])
    tolerance = 2e-3 if data['weights_dtype'] == 'float16' else 2e-5
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=tolerance * expected.abs().max().item())
    torch.testing.assert_close(logvar.double().flatten(), expected_logvar.flatten(), rtol=0, atol=tolerance)


@pytest.mark.parametrize('path', GOLDENS, ids=lambda p: p.stem)
def test_state_dict_order_follows_the_architecture(path):
    kwargs = golden(path)['kwargs']
    assert list(Precond(**kwargs).state_dict()) == expected_state_keys(kwargs)


@pytest.mark.parametrize('name', sorted(COUNTS))
def test_full_size_configurations(name):
    """Every train_edm2.py configuration, built on the meta device: state-dict order, entry and parameter counts as
    NVlabs' networks_edm2.py builds them, and the paper's sizes (the layouts themselves: *.keys.txt, checked by
    tests/test_networks_architectures.py)."""
    expected = COUNTS[name]
    with torch.device('meta'):
        net = Precond(**expected['kwargs'])
    assert list(net.state_dict()) == expected_state_keys(expected['kwargs'])
    assert len(net.state_dict()) == expected['entries']
    assert sum(p.numel() for p in net.parameters()) == expected['parameters']
    assert sum(b.numel() for b in net.buffers()) == expected['buffer_elements']
    size = name.rsplit('-', 1)[1]
    if size in PAPER_MPARAMS:
        assert round(expected['parameters'] / 1e6) in (PAPER_MPARAMS[size], PAPER_MPARAMS[size] - 1)


def test_published_architectures_for_probes():
    assert EDM2_ARCHITECTURES == {name: entry['kwargs'] for name, entry in COUNTS.items()}
    net = build_edm2_published('edm2-img512-xxs', seed=3, label_dim=0)
    gains = [p.item() for key, p in net.named_parameters() if key.endswith('_gain')]
    assert len(gains) == 1 + sum(key.endswith('emb_gain') for key in net.state_dict())
    assert all(0.5 <= gain <= 1.5 for gain in gains) and not net.training
    assert net.label_dim == 0 and net.img_channels == 4
    again = build_edm2_published('edm2-img512-xxs', seed=3, label_dim=0)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match='unknown.*edm2-img64-s'):
        build_edm2_published('edm2-img64-xxs')


def test_noise_range_interface_matches_edm_preconditioning():
    net = Precond(img_resolution=8, img_channels=3, label_dim=0, model_channels=8, channel_mult=[1], num_blocks=1,
                  attn_resolutions=[])
    assert (net.sigma_min, net.sigma_max) == (0, float('inf'))
    for dtype in (torch.float32, torch.float64):
        sigma = torch.tensor([0.002, 80.0], dtype=dtype)
        assert net.round_sigma(sigma).dtype == dtype and torch.equal(net.round_sigma(sigma), sigma)
    assert net.round_sigma(0.5).item() == 0.5
    state = net.__getstate__()
    assert not {'sigma_min', 'sigma_max', 'round_sigma'} & set(state)  # class attributes: not pickled


def test_use_fp16_runs_the_unet_in_float16_on_cuda_only():
    net = formula_weights_(Precond(img_resolution=8, img_channels=3, label_dim=0, model_channels=8,
                                   channel_mult=[1], num_blocks=1, attn_resolutions=[]))
    x = torch.zeros(1, 3, 8, 8)
    assert net.use_fp16 and net.model_dtype(x, force_fp32=False) == torch.float32  # the CPU
    assert net.model_dtype(x.to('meta'), force_fp32=False) == torch.float32
    dtypes = []
    net.unet.register_forward_hook(lambda _m, args, out: dtypes.append((args[0].dtype, args[1].dtype, out.dtype)))
    with torch.no_grad():
        assert net(x, torch.tensor([1.0])).dtype == torch.float32
    assert dtypes == [(torch.float32, torch.float32, torch.float32)]
    if torch.cuda.is_available():
        cuda = net.cuda()
        with torch.no_grad():
            assert cuda(x.cuda(), torch.tensor([1.0]).cuda()).dtype == torch.float32
            cuda(x.cuda(), torch.tensor([1.0]).cuda(), force_fp32=True)
        assert dtypes[1:] == [(torch.float16, torch.float32, torch.float16),
                              (torch.float32, torch.float32, torch.float32)]


def test_training_mode_forces_unit_weights():
    torch.manual_seed(0)
    layer = MPConv(6, 4, kernel=[3, 3])
    with torch.no_grad():
        layer.weight.mul_(7.0)
    layer.train()
    layer(torch.randn(1, 6, 5, 5))
    rms = layer.weight.detach().pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.ones(4), rtol=0, atol=1e-4)  # eps 1e-4 relative to a unit norm


@pytest.mark.parametrize('taps', [[1, 1], [1, 3, 3, 1]])
def test_resampling_against_the_filter_formula(taps):
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    f = torch.tensor(taps, dtype=torch.float64) / sum(taps)
    kernel = torch.outer(f, f)
    pad = (len(taps) - 1) // 2
    # down: out[i, j] = sum_ab kernel[a, b] x[2i + a - pad, 2j + b - pad] (zero outside)
    padded = torch.nn.functional.pad(x, [pad] * 4)
    expected = sum(kernel[a, b] * padded[:, :, a::2, b::2][:, :, :4, :4]
                   for a in range(len(taps)) for b in range(len(taps)))
    torch.testing.assert_close(resample(x, taps, 'down'), expected)
    # up: the adjoint of down, times 4 (each input pixel spreads 4·kernel around 2i, 2j)
    y = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    up = resample(y, taps, 'up')
    assert up.shape == (2, 3, 8, 8)
    torch.testing.assert_close((up * x).sum(), 4 * (resample(x, taps, 'down') * y).sum())
    assert resample(x, taps, 'keep') is x


def test_frozen_normalization_reuses_and_refreshes(one_thread):
    path = GOLDENS[0]
    data = golden(path)
    net = golden_net(path)
    assert net.freeze_weight_normalization() == sum(isinstance(m, MPConv) for m in net.modules())
    layer = net.unet.enc['16x16_block0'].conv_res0
    first = layer.scaled_weight(1, torch.float32)
    assert layer.scaled_weight(1, torch.float32) is first  # reused
    assert layer.scaled_weight(1, torch.float64) is not first  # another dtype, another weight
    with torch.no_grad():
        out = net(data['x'], data['sigma'], data['labels'])
        assert_matches(out, data['out'], scale=10)
        assert torch.equal(net(data['x'], data['sigma'], data['labels']), out)

        gain = net.unet.out_gain
        gain.mul_(0.5)  # an in-place change of a gain parameter
        fresh = copy.deepcopy(net)
        fresh.freeze_weight_normalization(False)
        assert torch.equal(net(data['x'], data['sigma'], data['labels']),
                           fresh(data['x'], data['sigma'], data['labels']))
        layer.weight.add_(0.25)  # an in-place change of a weight
        fresh.unet.enc['16x16_block0'].conv_res0.weight.add_(0.25)
        changed = net(data['x'], data['sigma'], data['labels'])
        assert torch.equal(changed, fresh(data['x'], data['sigma'], data['labels']))
        assert not torch.equal(changed, out)
    net.train()
    assert not layer._frozen and layer._frozen_weight is None  # training unfreezes
    net.eval().freeze_weight_normalization()
    with torch.no_grad():
        net(data['x'], data['sigma'], data['labels'])
    assert layer._frozen_weight is not None
    with aliased_torch_utils():
        state = pickle.loads(pickle.dumps(layer)).__dict__
    assert '_frozen_weight' not in state and '_frozen' not in state  # a cache: never pickled or copied
    assert copy.deepcopy(layer)._frozen_weight is None


def test_frozen_normalization_is_skipped_while_gradients_flow():
    torch.manual_seed(0)
    layer = MPConv(3, 2, kernel=[])
    layer.freeze_normalization()
    x = torch.randn(4, 3)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer._frozen_weight is None
    expected = x @ (normalize(layer.weight.detach()) / 3 ** 0.5).t()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
