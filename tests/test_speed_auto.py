"""Speed mode `auto` and the bf16 refusal, decided from CPU capabilities: the detection is replaced by hand-made
CPUs (AMD Zen 3 with AVX2 only, AMD Zen 4 with AVX512_BF16, Intel with AMX, Skylake-class AVX-512 without bf16,
Arm with BF16), so these tests do not depend on the machine they run on, and nothing is timed."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edm_bdia.generation import generate_images
from edm_bdia.runs.manifest import MANIFEST_NAME
from edm_bdia.networks.layers import Conv2d
from edm_bdia.speed import SpeedModeError, accelerate, apply_plan, hardware, make_plan
from edm_bdia.speed.hardware import CpuInfo, cpu_info_from
from edm_bdia.speed.modes import BATCH_INVARIANT_REFERENCE_TILE, CPU_TILES, CUDA_AUTO_TILE
from helpers.nets import TinyNonlinearNet
from test_acceleration import inputs, tiny_net

ROOT = Path(__file__).resolve().parents[1]
X86 = dict(architecture='x86_64', sse4_2=True, avx=True, avx2=True, fma3=True, num_logical_cores=2)
AVX512 = dict(X86, avx512_f=True, avx512_bw=True, avx512_dq=True, avx512_vl=True, avx512_vnni=True)
# torch.cpu.get_capabilities()-style mappings (False entries as torch reports them)
CPUS = {
    'zen3': dict(X86, cpu_name='AMD EPYC 7B13', avx512_f=False, avx512_bf16=False, amx_bf16=False, amx_tile=False),
    'zen4': dict(AVX512, cpu_name='AMD EPYC 9B14', avx512_bf16=True, amx_bf16=False, amx_tile=False),
    'sapphire-rapids': dict(AVX512, cpu_name='Intel(R) Xeon(R) Platinum 8481C', avx512_bf16=True, amx_tile=True,
                            amx_bf16=True),
    'skylake': dict(AVX512, cpu_name='Intel(R) Xeon(R) CPU @ 2.00GHz', avx512_bf16=False, amx_bf16=False),
    'graviton3': dict(architecture='aarch64', cpu_name='Neoverse-V1', neon=True, sve=True, bf16=True, i8mm=True),
    'graviton2': dict(architecture='aarch64', cpu_name='Neoverse-N1', neon=True, bf16=False),
}
NATIVE_BF16 = {'zen3': False, 'zen4': True, 'sapphire-rapids': True, 'skylake': False, 'graviton3': True,
               'graviton2': False}


def fake_cpu(monkeypatch, name):
    info = cpu_info_from(CPUS[name])
    monkeypatch.setattr(hardware, 'cpu_info', lambda: info)
    return info


@pytest.mark.parametrize('name', CPUS)
def test_native_bf16_is_read_from_the_isa_flags(name):
    info = cpu_info_from(CPUS[name])
    assert info.native_bf16 is NATIVE_BF16[name]
    assert info.model == CPUS[name]['cpu_name']
    assert info.describe().endswith('bf16 native' if NATIVE_BF16[name] else 'bf16 emulated')


def test_cpu_kinds_name_vendor_and_widest_matrix_instructions():
    kinds = {name: cpu_info_from(caps).kind for name, caps in CPUS.items()}
    assert kinds == {'zen3': 'amd-avx2', 'zen4': 'amd-avx512bf16', 'sapphire-rapids': 'intel-amx',
                     'skylake': 'intel-avx512', 'graviton3': 'neoverse-arm-bf16', 'graviton2': 'neoverse-arm'}


def test_proc_cpuinfo_flags_are_read_in_torch_spelling(tmp_path):
    x86 = tmp_path / 'x86'
    x86.write_text('processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu sse2 avx2 fma avx512f avx512bw '
                   'avx512_bf16 avx512_vnni\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu\n')
    info = cpu_info_from(proc=hardware._proc_cpuinfo(str(x86)), machine='x86_64')
    assert info.model == 'AMD EPYC 9B14' and info.native_bf16 and info.kind == 'amd-avx512bf16'
    assert info.reported_flags() == ['avx2', 'fma3', 'avx512_f', 'avx512_bw', 'avx512_vnni', 'avx512_bf16']
    arm = tmp_path / 'arm'
    arm.write_text('processor\t: 0\nFeatures\t: fp asimd sve svebf16 i8mm\nCPU part\t: 0xd40\n')
    info = cpu_info_from(proc=hardware._proc_cpuinfo(str(arm)), machine='arm64')
    assert info.architecture == 'aarch64' and info.native_bf16 and {'neon', 'sve_bf16'} <= info.flags
    assert not cpu_info_from(proc=None, machine='x86_64').native_bf16  # nothing known: nothing is native
    assert hardware._proc_cpuinfo(str(tmp_path / 'missing')) is None


def test_a_onednn_cap_hides_the_flags_above_it():
    zen4, sapphire = cpu_info_from(CPUS['zen4']), CPUS['sapphire-rapids']
    for cap in ('avx512_core_bf16', 'avx512_core_amx', 'avx10_2_512'):  # at or above its bf16 kernels
        capped = dataclasses.replace(zen4, onednn_cap=cap)
        assert capped.native_bf16 and capped.usable_flags == zen4.flags and capped.kind == zen4.kind
    below = dataclasses.replace(zen4, onednn_cap='avx512_core_vnni')
    assert not below.native_bf16 and below.kind == 'amd-avx512bf16-as-avx512'
    assert below.flags - below.usable_flags == {'avx512_bf16'}
    assert below.describe().endswith('; oneDNN capped at avx512_core_vnni (ONEDNN_MAX_CPU_ISA); bf16 emulated')
    assert cpu_info_from(CPUS['zen4'], onednn_cap='avx2').usable_flags == {'avx2', 'fma3', 'sse4_2', 'avx'}
    # AMX hidden, AVX512_BF16 still there: bf16 stays native, on the AVX-512 kernels
    no_amx = cpu_info_from(sapphire, onednn_cap='avx512_core_bf16')
    assert no_amx.native_bf16 and no_amx.kind == 'intel-amx-as-avx512bf16'
    assert cpu_info_from(sapphire, onednn_cap='avx512_core_amx').kind == 'intel-amx'
    assert cpu_info_from(CPUS['graviton3'], onednn_cap='avx2').native_bf16  # an x86 cap means nothing on Arm


@pytest.mark.parametrize('environ, cap', [
    ({}, None), ({'ONEDNN_MAX_CPU_ISA': 'AVX2'}, 'avx2'),
    ({'DNNL_MAX_CPU_ISA': 'avx512_core_vnni'}, 'avx512_core_vnni'),
    ({'ONEDNN_MAX_CPU_ISA': 'AVX2', 'DNNL_MAX_CPU_ISA': 'AVX512_CORE'}, 'avx2'),  # the newer name wins, as in oneDNN
    ({'ONEDNN_MAX_CPU_ISA': 'AVX10_1_512_AMX'}, 'avx512_core_amx'), ({'ONEDNN_MAX_CPU_ISA': 'ALL'}, None),
    ({'ONEDNN_MAX_CPU_ISA': 'DEFAULT'}, None), ({'ONEDNN_MAX_CPU_ISA': 'AVX3000'}, None)])
def test_the_onednn_cap_is_read_from_the_environment(environ, cap):
    assert hardware.onednn_isa_cap(environ) == cap


ONEDNN_ISA_PROBE = '''
import torch
from edm_bdia.speed.hardware import cpu_info
torch.nn.functional.conv2d(torch.ones(8, 64, 16, 16), torch.ones(64, 64, 3, 3))  # large enough for oneDNN
print('native_bf16', cpu_info().native_bf16, flush=True)
'''


@pytest.mark.parametrize('cap', [None, 'AVX512_CORE_AMX', 'AVX512_CORE_BF16', 'AVX512_CORE_VNNI', 'AVX2'])
def test_native_bf16_agrees_with_the_isa_onednn_reports_under_a_cap(cap):
    """oneDNN's own description of the instruction set it dispatches to (ONEDNN_VERBOSE) names bfloat16 exactly when
    this CPU, under the cap, counts as native."""
    env = {key: value for key, value in os.environ.items() if key not in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA')}
    env.update(ONEDNN_VERBOSE='1', **({'ONEDNN_MAX_CPU_ISA': cap} if cap else {}))
    result = subprocess.run([sys.executable, '-c', ONEDNN_ISA_PROBE], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    isa = [line.split('isa:', 1)[1] for line in result.stdout.splitlines() if ',info,cpu,isa:' in line]
    if not isa:
        pytest.skip('this torch build reports no oneDNN x86 instruction set')
    assert f'native_bf16 {"bfloat16" in isa[0]}' in result.stdout, (isa, result.stdout[-300:])


@pytest.mark.parametrize('name', CPUS)
def test_auto_picks_bf16_only_where_it_is_native(monkeypatch, name):
    fake_cpu(monkeypatch, name)
    plan = make_plan('auto', 'cpu')
    expected = 'bf16' if NATIVE_BF16[name] else 'fast'
    assert (plan.mode, plan.tile, plan.channels_last) == (expected, CPU_TILES[expected], True)
    assert plan.unet_dtype == (torch.bfloat16 if NATIVE_BF16[name] else None)
    record = plan.record()
    assert record['mode'] == expected and record['auto'].startswith(f'{"bf16" if NATIVE_BF16[name] else "fp32"}:')
    assert make_plan('auto', 'cpu') == plan  # a pure function of the capabilities: a resumed run records the same


@pytest.mark.parametrize('name', [name for name, native in NATIVE_BF16.items() if not native])
def test_bf16_by_name_is_refused_where_it_would_be_emulated(monkeypatch, name):
    info = fake_cpu(monkeypatch, name)
    with pytest.raises(SpeedModeError) as error:
        make_plan('bf16', 'cpu')
    message = str(error.value)
    assert '\n' not in message and message.startswith('mode bf16 is emulated on this CPU')
    assert info.model in message and 'use mode fast or auto' in message
    assert make_plan('bf16', 'cpu', allow_emulated_bf16=True).unet_dtype == torch.bfloat16  # explicit override


@pytest.mark.parametrize('name', [name for name, native in NATIVE_BF16.items() if native])
def test_bf16_by_name_runs_where_it_is_native(monkeypatch, name):
    fake_cpu(monkeypatch, name)
    plan = make_plan('bf16', 'cpu')
    assert plan.unet_dtype == torch.bfloat16 and plan.chosen_by is None and 'auto' not in plan.record()


@pytest.mark.parametrize('capability, mode', [((9, 0), 'fp16'), ((7, 0), 'fp16'), ((6, 1), 'fast')])
def test_auto_on_cuda_uses_tensor_cores_and_a_fixed_tile(monkeypatch, capability, mode):
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: capability)
    plan = make_plan('auto', 'cuda')
    assert (plan.mode, plan.tile) == (mode, CUDA_AUTO_TILE)
    assert f'compute capability {capability[0]}.{capability[1]}' in plan.chosen_by


def test_auto_elsewhere_is_the_batch_invariant_reference():
    plan = make_plan('auto', 'mps')
    assert (plan.mode, plan.tile, plan.unet_dtype) == ('reference', BATCH_INVARIANT_REFERENCE_TILE, None)
    assert plan.record()['auto'] == 'reference: the only mode on mps'


def test_auto_keeps_an_explicit_tile_and_compile(monkeypatch):
    fake_cpu(monkeypatch, 'zen3')
    plan = make_plan('auto', 'cpu', tile=3, compile=True)
    assert (plan.mode, plan.tile, plan.compile) == ('fast', 3, True)


def test_auto_falls_back_for_networks_that_cannot_take_its_pick(monkeypatch):
    fake_cpu(monkeypatch, 'zen4')
    plain = TinyNonlinearNet(label_dim=4, dtype=torch.float32)  # a torch module, but no EDM preconditioner
    fitted = accelerate(plain, 'auto')
    assert fitted.plan.mode == 'fast' and fitted.plan.unet_dtype is None
    assert 'fp32: a 16-bit UNet needs an EDM preconditioned network' in fitted.plan.record()['auto']
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    labels = torch.eye(4)[[0, 1, 2, 3, 0]]
    torch.testing.assert_close(fitted(x, 1.5, labels), plain(x, 1.5, labels), rtol=0, atol=2e-5)

    class NotAModule:  # an NVlabs-style callable that is no torch module: the reference mode, still tiled
        img_resolution, img_channels, label_dim, sigma_min, sigma_max = 8, 3, 4, 0, float('inf')
        round_sigma = staticmethod(torch.as_tensor)

        def __call__(self, x, sigma, class_labels=None):
            return plain(x, sigma, class_labels)
    wrapped = apply_plan(NotAModule(), make_plan('auto', 'cpu'), 'cpu')
    tile = CPU_TILES['bf16']
    assert (wrapped.plan.mode, wrapped.plan.tile) == ('reference', tile)
    padded = [0, 1, 2, 3] + [4] * (tile - 4)  # one call on a tile padded with its last sample
    with torch.no_grad():
        assert torch.equal(wrapped(x, 1.5, labels), plain(x[padded], 1.5, labels[padded])[:5])


def test_auto_on_an_edm_network_runs_the_bf16_unet(monkeypatch):
    fake_cpu(monkeypatch, 'sapphire-rapids')
    net = tiny_net('ddpmpp-cond')
    fitted = accelerate(net, 'auto')
    conv = next(module for module in net.model.modules() if isinstance(module, Conv2d))
    assert fitted.plan.mode == 'bf16' and conv.weight.dtype == torch.bfloat16
    assert fitted(*inputs(fitted, 3)).dtype == torch.float32


def test_engine_records_the_auto_choice_and_its_images_are_batch_invariant(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, 'zen3')
    runs = {}
    for batch in (2, 5):
        outdir = tmp_path / f'b{batch}'
        for _ in generate_images(tiny_net('ddpmpp-cond'), range(5), max_batch_size=batch, device='cpu',
                                 speed='auto', outdir=str(outdir)):
            pass
        runs[batch] = {path.name: path.read_bytes() for path in outdir.glob('*.png')}
        manifest = json.loads((outdir / MANIFEST_NAME).read_text())
        assert manifest['speed'] == dict(mode='fast', tile=8, channels_last=True,
                                         auto='fp32: bf16 would be emulated on this CPU (no amx_bf16 or avx512_bf16)')
    assert len(runs[2]) == 5 and runs[2] == runs[5]


CLI_WITH_FAKE_CPU = '''
import sys
from edm_bdia.speed import hardware
info = hardware.cpu_info_from({caps!r})
hardware.cpu_info = lambda: info
from edm_bdia.cli.generate import main
main(sys.argv[1:])
'''


def run_cli_on(name, args):
    return subprocess.run([sys.executable, '-c', CLI_WITH_FAKE_CPU.format(caps=CPUS[name]), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_command_line_bf16_refusal_is_one_line(tmp_path):
    result = run_cli_on('zen3', ['--outdir', tmp_path, '--seeds', '0-1', '--steps', 2, '--device', 'cpu',
                                 '--speed', 'bf16'])
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error')]
    assert errors == [f'Error: --speed bf16 is emulated on this CPU ({CPUS["zen3"]["cpu_name"]}: no amx_bf16 or '
                      'avx512_bf16) and runs several times slower than fp32; use --speed fast or auto (Python: '
                      'allow_emulated_bf16=True runs it anyway)'], result.stderr
    assert 'Traceback' not in result.stderr and not list(tmp_path.glob('*.png'))


def test_command_line_auto_records_its_choice_for_the_builtin_model(tmp_path):
    """The built-in model is a torch module but no EDM preconditioner: on a bf16 CPU auto runs it in fp32 and says
    why in the manifest; a resumed run makes the same plan and is accepted."""
    args = ['--outdir', tmp_path, '--seeds', '0-2', '--steps', 2, '--device', 'cpu', '--speed', 'auto']
    for extra in ([], ['--resume', '--seeds', '0-3']):
        result = run_cli_on('zen4', args + extra)
        assert result.returncode == 0, result.stderr
    speed = json.loads((tmp_path / MANIFEST_NAME).read_text())['speed']
    assert speed['mode'] == 'fast' and speed['tile'] == CPU_TILES['bf16'] and speed['auto'].startswith(
        'bf16: native on this CPU (avx512_bf16); fp32: a 16-bit UNet needs an EDM preconditioned network')
    assert len(list(tmp_path.glob('*.png'))) == 4


def test_this_machine_is_described():
    info = hardware.cpu_info()
    assert isinstance(info, CpuInfo) and info.model and info.describe().startswith(info.model)
