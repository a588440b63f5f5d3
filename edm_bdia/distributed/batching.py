"""NVlabs' split of a work list over batches and ranks, shared by generation and FID (docs/distributed.md).

The number of batches is a multiple of the world size, so every rank runs the same number of iterations; the
batches are the near-equal contiguous parts of `torch.tensor_split(items, num_batches)` and batch k belongs to rank
k % world_size. Batches are computed from their index, so a list of billions of seeds needs no memory.
"""


def num_batches(total, max_batch_size, world_size):
    """((total - 1) // (max_batch_size * world_size) + 1) * world_size, NVlabs' batch count."""
    return ((total - 1) // (max_batch_size * world_size) + 1) * world_size


def batch_bounds(total, count, k):
    """(start, stop) of part k when `total` items are split into `count` near-equal contiguous parts, the first
    `total % count` of them one longer (torch.tensor_split)."""
    base, extra = divmod(total, count)
    start = k * base + min(k, extra)
    return start, start + base + (1 if k < extra else 0)


def batch_sizes(total, count):
    """{batch size: number of batches} of the split of `total` items into `count` parts (sizes base+1 and base)."""
    base, extra = divmod(total, count)
    return {size: number for size, number in ((base + 1, extra), (base, count - extra)) if number}


def all_batches(items, max_batch_size, world_size):
    """Every batch (a list of items) in order; batch k belongs to rank k % world_size."""
    count = num_batches(len(items), max_batch_size, world_size)
    return [list(items[slice(*batch_bounds(len(items), count, k))]) for k in range(count)]


def rank_batches(items, max_batch_size, rank, world_size):
    """The batches of `rank`, in order (some may be empty), computed one at a time (a generator)."""
    count = num_batches(len(items), max_batch_size, world_size)
    for k in range(rank, count, world_size):
        yield list(items[slice(*batch_bounds(len(items), count, k))])
