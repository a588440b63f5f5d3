"""Network calls on fixed-size tiles of samples.

Every call sees `tile` samples: the last tile is padded by repeating its last sample and the padding's outputs are
dropped. CPU kernels choose their code path by batch size, not by a sample's position or its neighbours (measured
in tests/test_acceleration.py), so a sample's output then depends on that sample alone, and the images of a seed
are the same for any user batch size (the batch stays the unit of random streams and files).

Some smaller call sizes run the same code path as the tile (with oneDNN on x86, calls of 4 and 8 samples gave the
same bits, calls of 1-3 and 5-7 did not). `EquivalentCallSizes` finds them by a probe: the same generic inputs
(seeded noise at noise level PROBE_SIGMA) called at the smaller size and as a full tile must agree bit for bit.
Kernels pick their code path from shapes, not values, so agreement on generic inputs is agreement on all inputs
(inputs that are not generic can agree by accident: at sigma = 2e-6 a Gaussian mixture's posterior saturates, and
calls of 1 and 8 samples agreed there but not at sigma = 0.002); a last tile of r samples is then
padded only to the smallest power of two >= r that agreed, with the images unchanged (docs/performance.md,
'Batch-size invariance').
"""

import torch

PROBE_SEED = 20260  # the probe's noise: any fixed seed, so that every process probes alike
PROBE_SIGMA = 1.0  # the probe's noise level: mid-range, where no part of a network saturates


def _is_per_sample(value, batch):
    return torch.is_tensor(value) and value.ndim > 0 and value.shape[0] == batch


def tile_rows(value, batch, start, stop, tile):
    """Rows [start:stop] of a per-sample argument, padded to `tile` rows; shared arguments pass unchanged."""
    if not _is_per_sample(value, batch):
        return value
    rows = value[start:stop]
    missing = tile - rows.shape[0]
    if missing:
        rows = torch.cat([rows, rows[-1:].expand(missing, *rows.shape[1:])])
    return rows


class EquivalentCallSizes:
    """The call sizes below `tile` whose outputs match a tile call's bit for bit, probed once each and remembered
    (per network adapter, so per process, its threads and its kernels)."""

    def __init__(self, tile):
        self.tile = tile
        self.known = {}  # call size -> whether it matched the tile

    def call_size(self, rows, probe):
        """The size to call a last tile of `rows` samples at: the smallest power of two >= rows below the tile that
        matches it, else the tile. probe(size) -> bool runs the comparison for an unknown size."""
        size = 1 << (rows - 1).bit_length()
        while size < self.tile:
            if size not in self.known:
                self.known[size] = probe(size)
            if self.known[size]:
                return size
            size *= 2
        return self.tile


def call_in_tiles(call, tile, x, sigma, class_labels, model_kwargs, equivalent_sizes=None):
    """call(x, sigma, class_labels, model_kwargs) on tiles of `tile` samples; returns the outputs for all of x. With
    `equivalent_sizes` (an EquivalentCallSizes) a last, partial tile is padded only to an equivalent size."""
    batch = x.shape[0]
    outputs = []
    for start in range(0, batch, tile):
        stop = min(start + tile, batch)
        size = tile
        if stop - start < tile and equivalent_sizes is not None:
            size = equivalent_sizes.call_size(stop - start, _tile_probe(call, tile, x, sigma, class_labels,
                                                                        model_kwargs, start, stop))
        out = call(tile_rows(x, batch, start, stop, size),
                   *_rows_of_other_arguments(sigma, class_labels, model_kwargs, batch, start, stop, size))
        outputs.append(out[:stop - start])
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _rows_of_other_arguments(sigma, class_labels, model_kwargs, batch, start, stop, size):
    """(sigma, class_labels, model_kwargs) with their per-sample rows [start:stop] padded to `size`."""
    rows = lambda value: tile_rows(value, batch, start, stop, size)  # noqa: E731
    return rows(sigma), rows(class_labels), {key: rows(value) for key, value in model_kwargs.items()}


def _tile_probe(call, tile, x, sigma, class_labels, model_kwargs, start, stop):
    """probe(size): whether a call of `size` samples gives bit for bit the first `size` outputs of a tile call, on
    seeded noise at PROBE_SIGMA in place of x and sigma (the other arguments: this tile's rows). The tile call runs
    once, when first needed."""
    batch, drawn = x.shape[0], {}
    probe_sigma = torch.full_like(sigma, PROBE_SIGMA) if torch.is_tensor(sigma) else PROBE_SIGMA

    def call_noise(size):
        return call(drawn['noise'][:size],
                    *_rows_of_other_arguments(probe_sigma, class_labels, model_kwargs, batch, start, stop, size))

    def probe(size):
        if not drawn:
            drawn['noise'] = torch.randn((tile, *x.shape[1:]), generator=torch.Generator().manual_seed(PROBE_SEED),
                                         dtype=torch.float64).to(device=x.device, dtype=x.dtype)
            drawn['tile output'] = call_noise(tile)
        return torch.equal(call_noise(size), drawn['tile output'][:size])
    return probe


def padding_share(batch_sizes, tile):
    """The share of the samples in tiled network calls that are padding, for {batch size: number of batches}."""
    called = sum(-(-size // tile) * tile * number for size, number in batch_sizes.items())
    return 1 - sum(size * number for size, number in batch_sizes.items()) / called if called else 0.0
