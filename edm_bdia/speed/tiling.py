"""Network calls on fixed-size tiles of samples.

Every call sees exactly `tile` samples: the last tile is padded by repeating its last sample and the padding's
outputs are dropped. CPU kernels choose their code path by batch size, not by a sample's position or its
neighbours (measured in tests/test_acceleration.py), so a sample's output then depends on that sample alone, and
the images of a seed are the same for any user batch size (the batch stays the unit of random streams and files).
"""

import torch


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


def call_in_tiles(call, tile, x, sigma, class_labels, model_kwargs):
    """call(x, sigma, class_labels, model_kwargs) on tiles of `tile` samples; returns the outputs for all of x."""
    batch = x.shape[0]
    outputs = []
    for start in range(0, batch, tile):
        stop = min(start + tile, batch)
        rows = lambda value: tile_rows(value, batch, start, stop, tile)  # noqa: E731
        out = call(rows(x), rows(sigma), rows(class_labels), {k: rows(v) for k, v in model_kwargs.items()})
        outputs.append(out[:stop - start])
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def padding_share(batch_sizes, tile):
    """The share of the samples in tiled network calls that are padding, for {batch size: number of batches}."""
    called = sum(-(-size // tile) * tile * number for size, number in batch_sizes.items())
    return 1 - sum(size * number for size, number in batch_sizes.items()) / called if called else 0.0
