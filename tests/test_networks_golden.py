"""Golden vectors of the NVlabs reference networks (docs/networks.md, 'Golden vectors'), reproduced by our networks.

Each golden stores the constructor kwargs, the state_dict key list, the inputs and the reference outputs; the
weights are defined by a formula. Where torch's kernels reproduce the machine that generated the goldens
(`reference_arithmetic_here`) every tensor must be bit-identical (torch.equal); elsewhere the reference's own
tolerances apply, widened where this project's own AVX512 runners were measured to differ (noted at each comparison).
"""

import functools
from pathlib import Path

import pytest
import torch

from edm_bdia import networks

DATA = Path(__file__).parent / 'data' / 'networks'
GOLDEN_FILES = sorted(DATA.glob('*.pt'))
F32_ULP = 2.0 ** -23


def reference_arithmetic_here():
    """True where torch's kernels reproduce the machine that generated the goldens.

    The goldens were made with torch 2.13.0, ATen capability AVX512 and one thread. That is not sufficient: on an
    AVX512 machine of another CPU model (this project's Emerald Rapids runners, say) torch's elementwise sqrt/log and
    MKL's small GEMMs round differently, so even EDM's input scaling c_in·x = x / sqrt(σ_d² + σ²) differs by
    one ulp from the golden at σ = 3. The probe evaluates exactly that one-line formula (EDM's c_in) on the golden's
    inputs; it involves none of our network code.
    """
    if torch.backends.cpu.get_cpu_capability() != 'AVX512' or torch.__version__.split('+')[0] != '2.13.0':
        return False
    golden = torch.load(DATA / 'edm-ncsnpp-uncond-aug.pt', weights_only=True)
    sigma = golden['sigma'].reshape(-1, 1, 1, 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.equal(1 / (0.5 ** 2 + sigma ** 2).sqrt() * golden['x'], golden['debug']['model_in'])
    finally:
        torch.set_num_threads(threads)


EXACT = reference_arithmetic_here()


def formula_weights_(net):
    """Fill every state_dict entry k (except filters and `u`) with float32(a·sin(0.37·i + k)) computed in f64."""
    with torch.no_grad():
        for k, (key, value) in enumerate(net.state_dict().items()):
            if key.endswith('resample_filter') or key == 'u':
                continue
            amplitude = 16.0 if key.endswith('freqs') else 0.1
            i = torch.arange(value.numel(), dtype=torch.float64)
            value.copy_((amplitude * torch.sin(0.37 * i + k)).to(torch.float32).reshape(value.shape))


def state_dict_rows(net):
    params = dict(net.named_parameters())
    return [[key, list(value.shape), 'param' if key in params else 'buffer'] for key, value in net.state_dict().items()]


@functools.lru_cache(maxsize=None)
def load_golden(path):
    return torch.load(path, weights_only=True)


@functools.lru_cache(maxsize=None)
def build_net(path):
    """The golden's preconditioner built from its kwargs, with formula weights, in eval mode."""
    golden = load_golden(path)
    net = networks.PERSISTENT_CLASSES[golden['precond']](**golden['kwargs'])
    formula_weights_(net)
    return net.eval().requires_grad_(False)


@pytest.fixture(params=GOLDEN_FILES, ids=lambda p: p.stem)
def golden_path(request):
    return request.param


@pytest.fixture
def golden(golden_path):
    return load_golden(golden_path)


@pytest.fixture
def net(golden_path):
    return build_net(golden_path)


# the goldens were generated single-threaded (docs/networks.md, 'Environment sensitivity')
pytestmark = pytest.mark.usefixtures('one_thread')


def assert_matches(actual, expected, what, atol=0.0, rtol=0.0):
    """torch.equal on the reference machine; elsewhere |actual − expected| <= atol + rtol·|expected|
    (atol may be a tensor broadcasting against the values)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    error = (actual - expected).abs()
    if EXACT:
        assert torch.equal(actual, expected), f'{what}: max |diff| {error.max().item():.3g}'
    else:
        assert (error <= atol + rtol * expected.abs()).all(), f'{what}: max |diff| {error.max().item():.3g}'


def assert_out_matches(actual, expected, sigma, what):
    """Outputs within 2e-6·max(1, σ_i) per sample off the reference machine."""
    atol = (2e-6 * torch.as_tensor(sigma, dtype=torch.float32).clamp(min=1)).reshape(-1, 1, 1, 1)
    assert_matches(actual, expected, what, atol=atol)


def test_state_dict_layout(golden, net):
    expected = [[key, list(shape), kind] for key, shape, kind, _ in golden['keys']]
    assert state_dict_rows(net) == expected
    assert sum(p.numel() for p in net.parameters()) == golden['param_count']
    for key, _, _, source in golden['keys']:
        assert (source == 'constructor') == (key.endswith('resample_filter') or key == 'u')


def test_sigma_range(golden, net):
    # iDDPM's range comes from the f32 recursion for `u`, which accumulates ulp differences off the reference.
    rel = 0 if EXACT else 2e-6
    assert float(net.sigma_min) == pytest.approx(golden['sigma_min'], rel=rel, abs=0)
    assert float(net.sigma_max) == pytest.approx(golden['sigma_max'], rel=rel, abs=0)


def run_with_capture(net, *args, **kwargs):
    """Call net and capture the model's inputs/output and the embedding entering the first UNetBlock."""
    captured = {}
    first_block = next(m for m in net.model.enc.values() if isinstance(m, networks.UNetBlock))

    def model_pre(_module, args):
        captured['model_in'], captured['noise_labels'] = args[0].clone(), args[1].clone()

    def model_post(_module, _args, output):
        captured['F_x'] = output.clone()

    def block_pre(_module, args):
        captured.setdefault('emb', args[1].clone())

    handles = [net.model.register_forward_pre_hook(model_pre), net.model.register_forward_hook(model_post),
               first_block.register_forward_pre_hook(block_pre)]
    try:
        with torch.no_grad():
            out = net(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return out, captured


def test_forward_debug_tensors_and_output(golden, net):
    out, captured = run_with_capture(net, golden['x'], golden['sigma'], golden['class_labels'])
    debug = golden['debug']
    # Off the reference machine: model_in/noise_labels to 2 ulp (exact for the goldens' makers, but sqrt/log round
    # differently on other CPUs); emb to 1e-6 of its scale (MKL's K=512 GEMM differs by up to 7 ulp); F_x to 2e-6.
    assert_matches(captured['model_in'], debug['model_in'], 'model_in', rtol=2 * F32_ULP)
    assert_matches(captured['noise_labels'], debug['noise_labels'], 'noise_labels', rtol=2 * F32_ULP)
    assert_matches(captured['emb'], debug['emb'], 'emb', atol=1e-6 * max(1.0, debug['emb'].abs().max().item()))
    assert_matches(captured['F_x'], debug['F_x'], 'F_x', atol=2e-6)
    assert_out_matches(out, golden['out'], golden['sigma'], 'out')


def test_forward_variants(golden, net):
    calls = {'out_scalar_sigma': ((golden['x'].to(torch.float64), golden['sigma_scalar'], golden['class_labels']),
                                  {}, golden['sigma_scalar'].float())}
    if 'out_nolabels' in golden:
        calls['out_nolabels'] = ((golden['x'], golden['sigma'], None), {}, golden['sigma'])
    if 'out_aug' in golden:
        calls['out_aug'] = ((golden['x'], golden['sigma'], golden['class_labels']),
                            dict(augment_labels=golden['augment_labels']), golden['sigma'])
    assert len(calls) == 1 + (golden['kwargs'].get('label_dim', 0) > 0) + (golden['kwargs'].get('augment_dim', 0) > 0)
    for name, (args, kwargs, sigma) in calls.items():
        with torch.no_grad():
            out = net(*args, **kwargs)
        assert_out_matches(out, golden[name], sigma, name)


@pytest.mark.parametrize('golden_path', [p for p in GOLDEN_FILES if p.name.startswith('iddpm')],
                         ids=lambda p: p.stem)
def test_iddpm_noise_table_and_round_sigma(golden, net):
    assert golden['precond'] == 'iDDPMPrecond'
    assert_matches(net.u, golden['u'], 'u', rtol=2e-6)  # 1000 f32 steps: up to ~8 ulp off the reference
    probe = golden['round_sigma_probe']
    index = net.round_sigma(probe['sigma'], return_index=True)
    assert torch.equal(index, probe['index'])  # exact everywhere
    # The probe does exercise the cdist detail (docs/networks.md, 'iDDPM σ rounding with torch.cdist'): a plain
    # argmin |σ − u| picks another entry for a few σ.
    naive = (probe['sigma'].reshape(-1, 1) - net.u.reshape(1, -1)).abs().argmin(1)
    assert 0 < (naive != probe['index']).sum() < 20
    value = net.round_sigma(probe['sigma'])
    assert torch.equal(value, net.u[index])
    assert_matches(value, probe['value'], 'round_sigma value', rtol=2e-6)
