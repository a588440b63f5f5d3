"""NVlabs' split of a work list over batches and ranks (edm-format.md §3.3), shared by generation and FID."""


def _split_sizes(total, sections):
    """Sizes of torch.tensor_split(range(total), sections): near-equal contiguous parts, the first ones 1 longer."""
    base, extra = divmod(total, sections)
    return [base + 1 if i < extra else base for i in range(sections)]


def all_batches(items, max_batch_size, world_size):
    """NVlabs' batching (edm-format.md §3.3): the number of batches is a multiple of world_size, so every rank runs
    the same number of iterations; batch k of the returned list belongs to rank k % world_size."""
    num_batches = ((len(items) - 1) // (max_batch_size * world_size) + 1) * world_size
    batches, start = [], 0
    for size in _split_sizes(len(items), num_batches):
        batches.append(list(items[start:start + size]))
        start += size
    return batches


def rank_batches(items, max_batch_size, rank, world_size):
    """The batches of `rank`, in order (some may be empty)."""
    return all_batches(items, max_batch_size, world_size)[rank::world_size]
