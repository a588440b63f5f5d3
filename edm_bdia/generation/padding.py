"""How much of the network's work fixed tiles may spend on padding, for a run's batches, and the note that names
the tile that avoids it."""

from edm_bdia.distributed.batching import batch_sizes, num_batches
from edm_bdia.errors import ArgumentNote

PADDING_NOTE_SHARE = 0.25  # from this share of padded samples in network calls, a run says how to avoid them


def padding_share(sizes, tile):
    """The share of the samples in network calls of `tile` samples that are padding, for batches of `sizes`
    ({batch size: number of batches})."""
    called = sum(-(-size // tile) * tile * number for size, number in sizes.items())
    return 1 - sum(size * number for size, number in sizes.items()) / called if called else 0.0


def padding_note(tile, total, max_batch_size, world_size):
    """An ArgumentNote when calls of `tile` samples could make a large share of the network's work padding for
    `total` items in batches of at most `max_batch_size` over `world_size` ranks, else None (an upper bound: a last
    tile is called smaller where the probe of speed.tiling allows)."""
    sizes = batch_sizes(total, num_batches(total, max_batch_size, world_size))
    share = padding_share(sizes, tile) if tile is not None else 0.0
    if share < PADDING_NOTE_SHARE:
        return None
    largest = max(sizes)
    return ArgumentNote(
        f'up to {share:.0%} of the samples in the network calls may be padding: calls hold `tile`={tile} samples '
        '(a last tile fewer only where this CPU gives the same bits), so that images do not depend on '
        f'`max_batch_size` or the number of processes; `tile`={largest} pads '
        f'{"none" if padding_share(sizes, largest) == 0 else "less"} (images may then differ from other tiles\' in '
        'the last bits)')
