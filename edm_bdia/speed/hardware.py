"""What this CPU computes natively: its model, architecture and instruction-set flags, and the question the speed
modes ask of it: is bf16 arithmetic native here, or emulated in fp32 (several times slower than plain fp32)?

Flags come from torch's own cpuinfo (`torch.cpu.get_capabilities`, torch >= 2.8), else from /proc/cpuinfo (Linux),
named as torch names them (avx512_bf16, amx_bf16, ...). Where neither is readable no flag is known, so nothing
counts as native. On x86 a cap that the user puts on oneDNN's instruction sets (ONEDNN_MAX_CPU_ISA, older name
DNNL_MAX_CPU_ISA) removes the flags above it: oneDNN then runs bf16 convolutions on emulating kernels even though
the CPU has bf16 hardware.
"""

import dataclasses
import functools
import os
import platform

import torch

# Flags that make bf16 matrix arithmetic native, per architecture: AVX512_BF16 (vdpbf16ps: Intel Cooper Lake and
# later, AMD Zen 4 and later) or AMX-BF16 tiles (Intel Sapphire Rapids and later); Arm's BF16 extension (BFMMLA).
NATIVE_BF16_FLAGS = {'x86_64': ('amx_bf16', 'avx512_bf16'), 'aarch64': ('bf16', 'sve_bf16')}
# Flags reported beside benchmark results (the ones that decide which kernels oneDNN runs).
REPORTED_FLAGS = ('avx2', 'fma3', 'avx512_f', 'avx512_bw', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile',
                  'amx_bf16', 'amx_fp16', 'neon', 'sve', 'sve2', 'bf16', 'sve_bf16', 'i8mm')
# /proc/cpuinfo spellings of flags whose torch name differs.
_PROC_NAMES = {'avx512f': 'avx512_f', 'avx512bw': 'avx512_bw', 'fma': 'fma3', 'asimd': 'neon', 'svebf16': 'sve_bf16',
               'avx512fp16': 'avx512_fp16'}
_ARCHITECTURES = {'amd64': 'x86_64', 'x86_64': 'x86_64', 'arm64': 'aarch64', 'aarch64': 'aarch64'}

# oneDNN's x86 instruction-set levels, lowest first, as ONEDNN_MAX_CPU_ISA spells them (lower case).
ONEDNN_ISA_LEVELS = ('sse41', 'avx', 'avx2', 'avx2_vnni', 'avx2_vnni_2', 'avx512_core', 'avx512_core_vnni',
                     'avx512_core_bf16', 'avx512_core_fp16', 'avx512_core_amx', 'avx512_core_amx_fp16', 'avx10_2_512',
                     'avx10_2_512_amx_2')
_ONEDNN_ALIASES = {'avx10_1_512': 'avx512_core_fp16', 'avx10_1_512_amx': 'avx512_core_amx',
                   'avx10_1_512_amx_fp16': 'avx512_core_amx_fp16'}
# The lowest oneDNN level whose kernels use a flag; other avx512_* flags need avx512_core, other amx_* avx512_core_amx.
_ONEDNN_LEVEL_OF_FLAG = {'avx2': 'avx2', 'fma3': 'avx2', 'avx_vnni': 'avx2_vnni', 'avx512_vnni': 'avx512_core_vnni',
                         'avx512_bf16': 'avx512_core_bf16', 'avx512_fp16': 'avx512_core_fp16',
                         'amx_fp16': 'avx512_core_amx_fp16'}
_ONEDNN_LEVEL_OF_PREFIX = {'avx512_': 'avx512_core', 'amx_': 'avx512_core_amx'}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """A CPU as the speed modes see it: `flags` holds the names (torch's spelling) of the features it has;
    `onednn_cap` the oneDNN level (ONEDNN_ISA_LEVELS) its kernels are capped at, None when uncapped."""
    model: str
    architecture: str  # 'x86_64', 'aarch64', or what platform.machine() says
    flags: frozenset
    onednn_cap: str | None = None

    @property
    def usable_flags(self):
        """The flags whose kernels oneDNN may run: all of them, less those above `onednn_cap`."""
        if self.onednn_cap is None or self.architecture != 'x86_64':
            return self.flags
        cap = ONEDNN_ISA_LEVELS.index(self.onednn_cap)
        return frozenset(flag for flag in self.flags if ONEDNN_ISA_LEVELS.index(_onednn_level_of(flag)) <= cap)

    @property
    def native_bf16(self):
        """True when bf16 matrix products run on bf16 hardware (not emulated in fp32)."""
        return any(flag in self.usable_flags for flag in NATIVE_BF16_FLAGS.get(self.architecture, ()))

    @property
    def isa_class(self):
        """The widest usable matrix instruction set: 'amx', 'avx512bf16', 'avx512', 'avx2', 'arm-bf16', 'arm', ..."""
        return _isa_class(self.architecture, self.usable_flags)

    @property
    def kind(self):
        """A short name for results files: vendor and ISA class, e.g. 'amd-avx512bf16', 'intel-amx'; with a oneDNN
        cap below the hardware, both classes ('amd-avx512bf16-as-avx2')."""
        lowered = self.model.lower()
        vendor = next((name for name in ('amd', 'intel', 'apple', 'ampere', 'graviton', 'neoverse')
                       if name in lowered), 'cpu')
        hardware_class = _isa_class(self.architecture, self.flags)
        capped = f'-as-{self.isa_class}' if self.isa_class != hardware_class else ''
        return f'{vendor}-{hardware_class}{capped}'

    def reported_flags(self):
        return [flag for flag in REPORTED_FLAGS if flag in self.flags]

    def cap_text(self):
        """'; oneDNN capped at avx2 (ONEDNN_MAX_CPU_ISA)' where the cap hides flags, else ''."""
        return f'; oneDNN capped at {self.onednn_cap} (ONEDNN_MAX_CPU_ISA)' if self.usable_flags != self.flags else ''

    def describe(self):
        """One line: 'AMD EPYC (x86_64): avx2 fma3 avx512_f ... avx512_bf16; bf16 native'."""
        return (f'{self.model} ({self.architecture}): {" ".join(self.reported_flags()) or "no vector flags known"}'
                f'{self.cap_text()}; bf16 {"native" if self.native_bf16 else "emulated"}')


def _isa_class(architecture, flags):
    if architecture == 'x86_64':
        for flag, name in (('amx_bf16', 'amx'), ('avx512_bf16', 'avx512bf16'), ('avx512_f', 'avx512'),
                           ('avx2', 'avx2')):
            if flag in flags:
                return name
        return 'x86'
    if architecture == 'aarch64':
        return 'arm-bf16' if any(flag in flags for flag in NATIVE_BF16_FLAGS['aarch64']) else 'arm'
    return architecture


def _onednn_level_of(flag):
    """The lowest oneDNN level that uses `flag` ('sse41' for flags every level may use)."""
    if flag in _ONEDNN_LEVEL_OF_FLAG:
        return _ONEDNN_LEVEL_OF_FLAG[flag]
    return next((level for prefix, level in _ONEDNN_LEVEL_OF_PREFIX.items() if flag.startswith(prefix)), 'sse41')


def onednn_isa_cap(environ=os.environ):
    """The oneDNN level named by ONEDNN_MAX_CPU_ISA (else DNNL_MAX_CPU_ISA), or None: unset, 'all', 'default', or a
    value oneDNN does not know (it ignores those too)."""
    value = (environ.get('ONEDNN_MAX_CPU_ISA') or environ.get('DNNL_MAX_CPU_ISA') or '').strip().lower()
    value = _ONEDNN_ALIASES.get(value, value)
    return value if value in ONEDNN_ISA_LEVELS else None


def _torch_capabilities():
    get = getattr(getattr(torch, 'cpu', None), 'get_capabilities', None)
    return dict(get()) if get is not None else None


def _proc_cpuinfo(path='/proc/cpuinfo'):
    """(model, flags) from a Linux /proc/cpuinfo, or None."""
    try:
        with open(path, encoding='utf-8', errors='replace') as file:
            text = file.read()
    except OSError:
        return None
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(':')
        key = key.strip().lower()
        if key in ('model name', 'hardware', 'cpu model') and model is None:
            model = value.strip()
        elif key in ('flags', 'features') and not flags:
            flags = {_PROC_NAMES.get(name, name) for name in value.split()}
    return model, flags


def cpu_info_from(capabilities=None, proc=None, machine=None, onednn_cap=None):
    """A CpuInfo from torch's capability mapping (preferred) or a /proc/cpuinfo reading (model, flags)."""
    machine = machine or platform.machine()
    if capabilities is not None:
        architecture = str(capabilities.get('architecture', machine))
        flags = frozenset(name for name, value in capabilities.items() if value is True)
        model = (proc[0] if proc else None) or capabilities.get('cpu_name') or platform.processor()
    else:
        architecture = machine
        model, flags = proc if proc is not None else (None, set())
        flags = frozenset(flags)
        model = model or platform.processor()
    return CpuInfo(model=model or 'unknown CPU', architecture=_ARCHITECTURES.get(architecture.lower(), architecture),
                   flags=flags, onednn_cap=onednn_cap)


@functools.lru_cache(maxsize=None)
def cpu_info():
    """This machine's CpuInfo (read once per process, as oneDNN reads its cap)."""
    proc = _proc_cpuinfo()
    return cpu_info_from(_torch_capabilities(), proc, onednn_cap=onednn_isa_cap())
