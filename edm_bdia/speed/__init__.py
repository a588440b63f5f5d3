"""How the samplers call a network: one adapter (`AcceleratedNet`) under one `SpeedPlan`.

The default, `mode='reference'`, keeps each call's arithmetic bit-identical to NVlabs'. The other modes trade bits
for speed, each lever measured in `benchmarks/throughput.py`:

* `fast`: the network's own precision, activations channels_last (NHWC) end to end, and on CPU network calls on
  fixed-size tiles of samples (the last tile padded), so every sample's output depends on that sample alone.
* `bf16` (CPU or CUDA) / `fp16` (CUDA): `fast` with the UNet's convolutions and norms in 16 bits, weights cast
  once; preconditioning, embeddings and the sampler state keep their precision.
* `compile=True`: `torch.compile` of the network call (not of the sampling loop).
* `cuda_graphs=True` (CUDA): each tile shape is captured once as a CUDA graph and replayed.

Modules: `modes` (the plan: what each mode means, argument checks), `precision` (16-bit UNet), `tiling`
(fixed-size tiles), `cuda_graphs` (graph capture and replay), `accelerated` (the adapter, `accelerate`,
`apply_plan`).
"""

from edm_bdia.speed.accelerated import AcceleratedNet, accelerate, apply_plan, state_device_for
from edm_bdia.speed.modes import MODES, SpeedModeError, SpeedPlan, make_plan

__all__ = ['accelerate', 'apply_plan', 'make_plan', 'state_device_for', 'AcceleratedNet', 'MODES', 'SpeedModeError',
           'SpeedPlan']
