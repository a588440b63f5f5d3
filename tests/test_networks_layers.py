"""Unit behaviour of the network building blocks against independent formulas (docs/networks.md, 'Layers' and
'Preconditioners')."""

import numpy as np
import pytest
import torch

from edm_bdia import networks
from edm_bdia.networks.attention import AttentionOp
from edm_bdia.networks import layers
from edm_bdia.networks.layers import weight_init
from edm_bdia.networks.precond import build_model
from edm_bdia.speed.hardware import cpu_info


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_linear_is_matmul_plus_bias_and_bias_free_variant_stores_none():
    layer = networks.Linear(5, 3)
    layer.bias.data = randn(3, seed=1)
    x = randn(4, 5)
    expected = x.double() @ layer.weight.double().t() + layer.bias.double()
    torch.testing.assert_close(layer(x).double(), expected, rtol=1e-6, atol=1e-6)
    no_bias = networks.Linear(5, 3, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ['weight']


@pytest.mark.parametrize('taps', [[1, 1], [1, 3, 3, 1]])
def test_resample_filter_buffer_is_normalised_outer_product(taps):
    conv = networks.Conv2d(2, 2, kernel=0, down=True, resample_filter=taps)
    f = torch.tensor(taps, dtype=torch.float64)
    expected = (f[:, None] * f[None, :] / f.sum() ** 2).float().reshape(1, 1, len(taps), len(taps))
    assert torch.equal(conv.resample_filter, expected)
    assert conv.weight is None and conv.bias is None and list(conv.state_dict()) == ['resample_filter']
    plain = networks.Conv2d(2, 2, kernel=3)
    assert plain.resample_filter is None and 'resample_filter' not in plain.state_dict()


def transposed_resampling(x, taps, channels, padding):
    """The up path's formula: depthwise transposed convolution with 4·F2, stride 2, computed in float64."""
    f = torch.tensor(taps, dtype=torch.float64)
    f2 = (torch.outer(f, f) / f.sum() ** 2).reshape(1, 1, len(taps), len(taps))
    return torch.nn.functional.conv_transpose2d(x.double(), f2.mul(4).tile([channels, 1, 1, 1]), groups=channels,
                                                stride=2, padding=padding)


def test_pair_filter_down_is_average_pooling():
    x = randn(2, 3, 8, 8)
    down = networks.Conv2d(3, 3, kernel=0, down=True)
    torch.testing.assert_close(down(x), torch.nn.functional.avg_pool2d(x, 2), rtol=0, atol=1e-7)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize('taps', [[1, 1], [2, 2], [1, 3, 3, 1]])
def test_up_path_equals_transposed_convolution_formula(dtype, taps):
    """The box filter's copy and the 16-bit path computed in fp32 give the formula's values: exactly for the box
    filter (one product x·1 per pixel) and for 16-bit [1,3,3,1] on these inputs (four products exact in fp32,
    rounded once); fp32 [1,3,3,1] sums four rounded products. NCHW and NHWC; infinities and NaNs pass through."""
    x = randn(2, 4, 6, 6, seed=5).mul(3).to(dtype)
    x[0, 0, 0, :3] = torch.tensor([float('inf'), float('-inf'), float('nan')])
    up = networks.Conv2d(4, 4, kernel=0, up=True, resample_filter=taps).to(dtype)
    expected = transposed_resampling(x, taps, 4, (len(taps) - 1) // 2)
    exact = len(taps) == 2 or dtype != torch.float32
    for layout in (torch.contiguous_format, torch.channels_last):
        y = up(x.contiguous(memory_format=layout))
        assert y.dtype == dtype and y.shape == (2, 4, 12, 12)
        assert torch.equal(y.isnan(), expected.isnan())
        torch.testing.assert_close(y.double().nan_to_num(), expected.to(dtype).double().nan_to_num(), rtol=0 if exact
                                   else 1e-6, atol=0 if exact else 1e-6)
    assert up.up_by_repeat == (len(taps) == 2)


def test_16_bit_up_path_is_the_correctly_rounded_transposed_convolution():
    """The fp32 detour for 16-bit CPU inputs gives the float64 transposed convolution rounded once to bf16 ([1,3,3,1]:
    4 products per pixel, exact in fp32), on every CPU. torch's own (slow) 16-bit kernel gives the same bits where
    oneDNN has bf16 instructions; its emulation on narrower CPUs (AVX2) rounds products and partial sums to bf16 (7
    roundings per output), so it is within 7 bf16 half-steps (7 * 2^-9) of the sum of the terms' magnitudes."""
    x = randn(3, 8, 8, 8, seed=6).mul(4).bfloat16().contiguous(memory_format=torch.channels_last)
    taps = [1, 3, 3, 1]
    up = networks.Conv2d(8, 8, kernel=0, up=True, resample_filter=taps).bfloat16()
    f2 = up.resample_filter.mul(4).tile([8, 1, 1, 1])
    exact = torch.nn.functional.conv_transpose2d(x.double(), f2.double(), groups=8, stride=2, padding=1)
    assert torch.equal(up(x), exact.bfloat16())
    torchs = torch.nn.functional.conv_transpose2d(x, f2, groups=8, stride=2, padding=1)
    if cpu_info().native_bf16:
        assert torch.equal(up(x), torchs)
    else:
        magnitude = torch.nn.functional.conv_transpose2d(x.double().abs(), f2.double(), groups=8, stride=2, padding=1)
        assert ((torchs.double() - exact).abs() <= 7 * 2 ** -9 * magnitude).all()


@pytest.mark.parametrize('taps', [[1, 1], [1, 3, 3, 1]])
@pytest.mark.parametrize('kernel', [0, 1, 3])
@pytest.mark.parametrize('fused', [False, True])
def test_resampling_sizes_and_constant_preservation(taps, kernel, fused):
    """Every up path doubles H and W, every down path halves them; the filters have unit DC gain, so a
    constant image stays constant away from the zero-padded border."""
    for direction, size in (('up', 16), ('down', 4)):
        conv = networks.Conv2d(2, 2, kernel=kernel, bias=False, resample_filter=taps, fused_resample=fused,
                               **{direction: True})
        if conv.weight is not None:
            conv.weight.data.zero_()
            conv.weight.data[:, :, kernel // 2, kernel // 2] = torch.eye(2)  # identity 'centre tap' convolution
        y = conv(torch.ones(1, 2, 8, 8))
        assert y.shape == (1, 2, size, size)
        inner = y[..., 2:-2, 2:-2] if direction == 'up' else y[..., 1:-1, 1:-1]
        torch.testing.assert_close(inner, torch.ones_like(inner), rtol=0, atol=1e-6)


def test_conv_rejects_up_and_down_together():
    with pytest.raises(ValueError, match='up and down'):
        networks.Conv2d(2, 2, kernel=3, up=True, down=True)


@pytest.mark.parametrize('channels, groups', [(48, 12), (192, 32), (1344, 32), (16, 4)])
def test_group_norm_group_count_and_native_formula(channels, groups):
    norm = networks.GroupNorm(channels, eps=1e-6)
    assert norm.num_groups == groups
    x = randn(2, channels, 3, 3).double()
    g = x.reshape(2, groups, -1)
    expected = ((g - g.mean(-1, keepdim=True)) / (g.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt())
    torch.testing.assert_close(norm(x.float()).double(), expected.reshape(x.shape), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('channels, size, fp32_path', [(256, 16, True), (128, 8, True), (512, 16, False),
                                                     (256, 32, False)])
def test_bf16_group_norm_fp32_path_gives_the_bf16_kernels_values(channels, size, fp32_path):
    """Channels-last bf16 with at most 8 channels per group and 256 pixels takes the fp32 kernel on a copy; its
    output equals torch's bf16 kernel's. Either path lies within one bf16 ulp of the float64 formula's terms."""
    norm = networks.GroupNorm(channels, eps=1e-6)
    norm.weight.data = randn(channels, seed=7).abs().add(0.5)
    norm.bias.data = randn(channels, seed=8)
    norm = norm.bfloat16()
    x = randn(2, channels, size, size, seed=9).mul(2).add(1).bfloat16().contiguous(memory_format=torch.channels_last)
    assert layers._bf16_group_norm_is_slow(x, norm.num_groups) == fp32_path
    y = norm(x)
    native = torch.nn.functional.group_norm(x, norm.num_groups, norm.weight, norm.bias, eps=1e-6)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    if fp32_path:
        assert torch.equal(y, native)
    g = x.double().reshape(2, norm.num_groups, -1)
    normed = ((g - g.mean(-1, keepdim=True)) / (g.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt())
    normed, weight, bias = (t.reshape(shape) for t, shape in ((normed, x.shape), (norm.weight.double(), (-1, 1, 1)),
                                                              (norm.bias.double(), (-1, 1, 1))))
    expected, terms = normed * weight + bias, normed.abs() * weight + bias.abs()
    assert ((y.double() - expected).abs() <= terms * 2 ** -7).all()


def test_attention_forward_and_backward_match_softmax_formula():
    q = randn(3, 8, 5, seed=1).requires_grad_(True)
    k = randn(3, 8, 7, seed=2).requires_grad_(True)
    w = AttentionOp.apply(q, k)
    qd, kd = q.detach().double().requires_grad_(True), k.detach().double().requires_grad_(True)
    wd = torch.softmax(torch.einsum('ncq,nck->nqk', qd, kd) / np.sqrt(8), dim=2)
    torch.testing.assert_close(w.double(), wd, rtol=1e-5, atol=1e-6)
    upstream = randn(3, 5, 7, seed=3)
    (w * upstream).sum().backward()
    (wd * upstream.double()).sum().backward()
    torch.testing.assert_close(q.grad.double(), qd.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(k.grad.double(), kd.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('endpoint', [False, True])
def test_positional_embedding_formula(endpoint):
    emb = networks.PositionalEmbedding(8, max_positions=100, endpoint=endpoint)
    x = torch.tensor([0.0, 1.5, 7.0])
    freqs = (1 / 100) ** (torch.arange(4, dtype=torch.float64) / (3 if endpoint else 4))
    phases = x.double()[:, None] * freqs[None, :]
    torch.testing.assert_close(emb(x).double(), torch.cat([phases.cos(), phases.sin()], 1), rtol=0, atol=1e-5)


def test_fourier_embedding_formula():
    emb = networks.FourierEmbedding(6, scale=2)
    assert list(emb.state_dict()) == ['freqs'] and emb.freqs.shape == (3,)
    x = torch.tensor([0.1, -0.3])
    phases = 2 * np.pi * x.double()[:, None] * emb.freqs.double()[None, :]
    torch.testing.assert_close(emb(x).double(), torch.cat([phases.cos(), phases.sin()], 1), rtol=0, atol=1e-5)


def test_unet_block_optional_layers_and_head_count():
    same = networks.UNetBlock(32, 32, emb_channels=8)
    assert same.skip is None and same.num_heads == 0 and not hasattr(same, 'qkv')
    down = networks.UNetBlock(32, 32, emb_channels=8, down=True)
    assert down.skip.weight is None and down.skip.resample_filter is not None  # kernel-0 skip (ADM)
    proj = networks.UNetBlock(32, 32, emb_channels=8, down=True, resample_proj=True)
    assert proj.skip.weight.shape == (32, 32, 1, 1)
    assert networks.UNetBlock(32, 48, emb_channels=8, attention=True).num_heads == 0  # < 64 channels: none
    assert networks.UNetBlock(128, 128, emb_channels=8, attention=True).num_heads == 2
    assert networks.UNetBlock(48, 48, emb_channels=8, attention=True, num_heads=1).qkv.weight.shape == (144, 48, 1, 1)


def test_unet_block_accepts_pickled_init_keywords():
    init = dict(init_mode='kaiming_uniform', init_weight=np.sqrt(1 / 3), init_bias=np.sqrt(1 / 3))
    block = networks.UNetBlock(16, 16, emb_channels=4, attention=True, num_heads=1, init=init,
                               init_zero=dict(init_mode='kaiming_uniform', init_weight=0, init_bias=0),
                               init_attn=dict(init_mode='xavier_uniform', init_weight=np.sqrt(0.2)))
    assert block.conv1.weight.abs().max() == 0 and block.proj.weight.abs().max() == 0  # init_zero layers
    assert block.conv0.weight.abs().max() <= np.sqrt(3 / (16 * 9)) * np.sqrt(1 / 3)  # kaiming_uniform bound


@pytest.mark.parametrize('mode, variance', [('xavier_uniform', 2 / 30), ('xavier_normal', 2 / 30),
                                            ('kaiming_uniform', 1 / 10), ('kaiming_normal', 1 / 10)])
def test_weight_init_variances(mode, variance):
    torch.manual_seed(0)
    w = weight_init([200, 200], mode, fan_in=10, fan_out=20)
    assert abs(w.var().item() / variance - 1) < 0.02


@pytest.mark.parametrize('mode, draw, scale', [('xavier_uniform', 'uniform', np.sqrt(6 / 9)),
                                               ('xavier_normal', 'normal', np.sqrt(2 / 9)),
                                               ('kaiming_uniform', 'uniform', np.sqrt(3 / 4)),
                                               ('kaiming_normal', 'normal', np.sqrt(1 / 4))])
def test_seeded_layer_init_is_the_published_formula_bit_for_bit(mode, draw, scale):
    """Weights then bias, each base·init factor, from the same generator: (2u − 1)·scale or z·scale."""
    def base(shape):
        return (torch.rand(*shape) * 2 - 1) * scale if draw == 'uniform' else torch.randn(*shape) * scale
    torch.manual_seed(3)
    layer = networks.Linear(4, 5, init_mode=mode, init_weight=0.7, init_bias=0.2)
    torch.manual_seed(3)
    weight = base([5, 4]) * 0.7
    bias = base([5]) * 0.2
    assert torch.equal(layer.weight, weight) and torch.equal(layer.bias, bias)


def test_every_tensor_of_a_network_can_be_built_on_the_meta_device():
    """What the pickle loader relies on: every tensor a network registers can be built on the meta device (its
    values are replaced on loading)."""
    with torch.device('meta'):
        net = networks.EDMPrecond(img_resolution=8, img_channels=3, label_dim=2, model_type='SongUNet',
                                  model_channels=16, channel_mult=[1, 2], num_blocks=1, embedding_type='fourier',
                                  encoder_type='residual', resample_filter=[1, 3, 3, 1])
    tensors = [*net.parameters(), *net.buffers()]
    assert tensors and all(tensor.is_meta for tensor in tensors)


def test_weight_init_rejects_unknown_mode():
    with pytest.raises(ValueError, match="init_mode: unknown value 'orthogonal'"):
        weight_init([2, 2], 'orthogonal', 2, 2)


@pytest.mark.parametrize('name, value', [('embedding_type', 'sinusoidal'), ('encoder_type', 'dense'),
                                         ('decoder_type', 'residual')])
def test_song_unet_rejects_unknown_options(name, value):
    with pytest.raises(ValueError, match=f'SongUNet: {name}={value!r} is not supported'):
        networks.SongUNet(16, 3, 3, **{name: value})


def test_model_type_is_checked_and_dhariwal_rejects_song_options():
    with pytest.raises(ValueError, match="model_type='UNet'"):
        build_model('UNet', img_resolution=16, in_channels=3, out_channels=3)
    with pytest.raises(TypeError):
        networks.DhariwalUNet(16, 3, 3, embedding_type='fourier')


TINY_SONG = dict(model_type='SongUNet', model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])
TINY_ADM = dict(model_type='DhariwalUNet', model_channels=32, channel_mult=[2], num_blocks=1, attn_resolutions=[])


class ZeroModel(torch.nn.Module):
    """Stands in for a UNet: records its inputs and returns zeros, so that D = c_skip·x exposes c_skip."""

    def forward(self, x, noise_labels, class_labels=None, **kwargs):
        self.seen = (x, noise_labels, class_labels, kwargs)
        return torch.zeros_like(x)


@pytest.mark.parametrize('precond, kwargs', [('EDMPrecond', TINY_SONG), ('VPPrecond', TINY_SONG),
                                             ('VEPrecond', TINY_SONG), ('iDDPMPrecond', TINY_ADM)])
def test_preconditioner_coefficients(precond, kwargs):
    """c_skip and c_in of Table 1 (Karras et al. 2022), in f64, through the public forward."""
    net = networks.PERSISTENT_CLASSES[precond](img_resolution=8, img_channels=3, label_dim=4, **kwargs)
    net.model = ZeroModel()
    x = randn(2, 3, 8, 8)
    sigma = torch.tensor([0.3, 7.0])
    out = net(x, sigma, augment_labels='passed through')
    seen_x, noise_labels, labels, extra = net.model.seen
    s = sigma.double().reshape(-1, 1, 1, 1)
    c_skip = {'EDMPrecond': 0.25 / (s ** 2 + 0.25)}.get(precond, torch.ones_like(s))
    c_in = {'EDMPrecond': 1 / (s ** 2 + 0.25).sqrt(),
            'VEPrecond': torch.ones_like(s)}.get(precond, 1 / (s ** 2 + 1).sqrt())
    torch.testing.assert_close(out.double(), c_skip * x.double(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(seen_x.double(), c_in * x.double(), rtol=1e-6, atol=1e-7)
    assert noise_labels.shape == (2,) and labels.shape == (1, 4) and not labels.any()  # zeros when None
    assert extra == {'augment_labels': 'passed through'}


def test_noise_label_maps():
    s = torch.tensor([0.002, 0.5, 80.0])
    edm = networks.EDMPrecond(8, 3, **TINY_SONG)
    ve = networks.VEPrecond(8, 3, **TINY_SONG)
    vp = networks.VPPrecond(8, 3, **TINY_SONG)
    for net, expected in ((edm, s.double().log() / 4), (ve, (0.5 * s.double()).log())):
        net.model = ZeroModel()
        net(torch.zeros(3, 3, 8, 8), s)
        torch.testing.assert_close(net.model.seen[1].double(), expected, rtol=1e-6, atol=1e-6)
    # VP: σ⁻¹ inverts σ(t), and sigma_min is σ(1e-5) in f32 = 2**-10 exactly (docs/networks.md, 'VP noise range in
    # float32').
    t = torch.tensor([1e-3, 0.2, 1.0])
    torch.testing.assert_close(vp.sigma_inv(vp.sigma(t)), t, rtol=1e-3, atol=1e-5)
    assert vp.sigma_min == 2 ** -10 and vp.sigma_max == pytest.approx(152.16697692871094, abs=1e-4)


def test_iddpm_round_sigma_returns_table_entries_with_input_shape_and_dtype():
    net = networks.iDDPMPrecond(8, 3, **TINY_ADM)
    sigma = torch.tensor([[0.5, 3.0], [80.0, 1e-4]], dtype=torch.float64)
    index = net.round_sigma(sigma, return_index=True)
    value = net.round_sigma(sigma)
    assert index.shape == sigma.shape and index.dtype == torch.int64
    assert value.dtype == torch.float64 and torch.equal(value, net.u[index].double())
    assert net.u[-1] == 0 and (net.u[:-1] > net.u[1:]).all()  # strictly decreasing to u[M] = 0
    assert net.sigma_min == float(net.u[999]) and net.sigma_max == float(net.u[0])


def test_use_fp16_is_ignored_on_cpu():
    torch.manual_seed(0)
    net16 = networks.EDMPrecond(8, 3, use_fp16=True, **TINY_ADM).eval()
    net32 = networks.EDMPrecond(8, 3, **TINY_ADM).eval()
    net32.load_state_dict(net16.state_dict())
    x, sigma = randn(2, 3, 8, 8), torch.tensor([0.5, 2.0])
    with torch.no_grad():
        assert torch.equal(net16(x, sigma), net32(x, sigma))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='fp16 mode exists on CUDA only')
def test_fp16_mode_on_cuda():
    """use_fp16 runs convolutions and norms in f16 but the embedding and noise labels in f32 (docs/networks.md,
    'fp16 mode'); the result is f32 and close to the fp32 path."""
    torch.manual_seed(0)
    for kwargs in (TINY_ADM, dict(TINY_SONG, embedding_type='fourier', encoder_type='residual')):
        net = networks.EDMPrecond(8, 3, use_fp16=True, label_dim=4, **kwargs).eval().cuda()
        dtypes = {}

        def record(name):
            def hook(_module, _args, output):
                dtypes.setdefault(name, output.dtype)  # returns None: the output is left alone
            return hook

        hooks = [net.model.map_layer0.register_forward_hook(record('map')),
                 net.model.enc['8x8_conv'].register_forward_hook(record('conv'))]
        x, sigma = randn(2, 3, 8, 8).cuda(), torch.tensor([0.5, 2.0]).cuda()
        with torch.no_grad():
            out16 = net(x, sigma)
            out32 = net(x, sigma, force_fp32=True)
        for hook in hooks:
            hook.remove()
        assert out16.dtype == torch.float32 and dtypes == {'map': torch.float32, 'conv': torch.float16}
        torch.testing.assert_close(out16, out32, rtol=0, atol=2e-2)


@pytest.mark.parametrize('kwargs', [TINY_SONG, TINY_ADM])
def test_label_dropout_applies_in_training_only(kwargs):
    """label_dropout=1 drops every row in training mode (output as for all-zero labels), never in eval mode."""
    torch.manual_seed(0)
    net = networks.EDMPrecond(8, 3, label_dim=4, dropout=0, label_dropout=1, **kwargs)
    for p in net.parameters():  # ADM zero-initialises its output conv: make every layer matter
        torch.nn.init.normal_(p, std=0.1)
    x, sigma, labels = randn(2, 3, 8, 8), torch.tensor([0.5, 2.0]), torch.eye(4)[:2]
    with torch.no_grad():
        net.train()
        assert torch.equal(net(x, sigma, labels), net(x, sigma, torch.zeros_like(labels)))
        net.eval()
        assert not torch.equal(net(x, sigma, labels), net(x, sigma, torch.zeros_like(labels)))
