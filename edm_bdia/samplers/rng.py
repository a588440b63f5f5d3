"""Per-sample random streams with NVlabs' `StackedRandomGenerator` semantics (docs/generation.md, "What an image
depends on").

One `torch.Generator` per sample, seeded with `seed % 2**32`; every draw takes `size[1:]` from each generator and
stacks the results. An image therefore depends only on its own seed, whatever the batch it was drawn in.
"""

import torch


class StackedRandomGenerator:
    """A batch of independent generators, one per seed, on `device`."""

    def __init__(self, device, seeds):
        self.generators = [torch.Generator(device).manual_seed(int(seed) % (1 << 32)) for seed in seeds]

    def _check_batch(self, size):
        if size[0] != len(self.generators):
            raise ValueError(f'batch size {size[0]} does not match the {len(self.generators)} seeds of this generator')

    def randn(self, size, **kwargs):
        self._check_batch(size)
        return torch.stack([torch.randn(size[1:], generator=gen, **kwargs) for gen in self.generators])

    def randn_like(self, input):
        return self.randn(input.shape, dtype=input.dtype, layout=input.layout, device=input.device)

    def randint(self, *args, size, **kwargs):
        self._check_batch(size)
        return torch.stack([torch.randint(*args, size=size[1:], generator=gen, **kwargs) for gen in self.generators])
