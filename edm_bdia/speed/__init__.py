"""How the samplers call a network: one adapter (`AcceleratedNet`) under one `SpeedPlan`.

The default, `mode='reference'`, keeps each call's arithmetic bit-identical to NVlabs'. The other modes trade bits
for speed, each lever measured in `benchmarks/throughput.py`:

The default on CPU and MPS calls the network on fixed tiles of 8 samples (each call NVlabs' arithmetic for 8
samples), so images do not depend on the batch size and the calls stay cache-sized.

* `fast`: the network's own precision, activations channels_last (NHWC) end to end, and on CPU network calls on
  fixed-size tiles of samples (the last tile padded), so every sample's output depends on that sample alone.
* `bf16` (CPU or CUDA) / `fp16` (CUDA): `fast` with the UNet's convolutions and norms in 16 bits, weights cast
  once; preconditioning, embeddings and the sampler state keep their precision.
* `auto`: picked from the device's capabilities alone (deterministic per machine): `bf16` where the CPU computes
  bf16 natively (AVX512_BF16, AMX-BF16, Arm BF16), else `fast`; `fp16` on CUDA with tensor cores; always fixed
  tiles, so images are batch-invariant. `bf16` asked for by name on a CPU that would emulate it is refused.
* `compile=True`: `torch.compile` of the network call (not of the sampling loop).
* `cuda_graphs=True` (CUDA): each tile shape is captured once as a CUDA graph and replayed.
* `retain_freed_memory()`: keeps freed memory in the process heap (glibc), so network calls stop page-faulting
  their buffers; process-wide, so the command lines call it and the library never does on its own.

Modules: `hardware` (CPU model and ISA flags, native bf16), `modes` (the plan: what each mode means, `auto`,
argument checks), `allocator` (the heap setting), `precision` (16-bit UNet), `tiling` (fixed-size tiles),
`cuda_graphs` (graph capture and replay), `accelerated` (the adapter, `accelerate`, `apply_plan`).
"""

from edm_bdia.speed.accelerated import AcceleratedNet, accelerate, apply_plan, state_device_for
from edm_bdia.speed.allocator import retain_freed_memory
from edm_bdia.speed.hardware import CpuInfo, cpu_info
from edm_bdia.speed.modes import MODES, SpeedModeError, SpeedPlan, auto_mode, make_plan

__all__ = ['accelerate', 'apply_plan', 'auto_mode', 'cpu_info', 'make_plan', 'retain_freed_memory', 'state_device_for',
           'AcceleratedNet', 'CpuInfo', 'MODES', 'SpeedModeError', 'SpeedPlan']
