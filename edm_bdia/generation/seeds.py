"""Seeds: NVlabs' `--seeds` syntax as a lazy sequence, and where each seed's image goes."""

import bisect
import collections.abc
import numbers
import os
import re
import sys

from edm_bdia.errors import ArgumentError

_RANGE = re.compile(r'^(\d+)-(\d+)$')


class Seeds(collections.abc.Sequence):
    """An ordered list of seeds made of inclusive ranges, held as ranges: '0-9999999999' takes no memory.

    Order and duplicates are kept; slicing gives a list. Seeds alias modulo 2**32, as NVlabs' generators do."""

    def __init__(self, ranges):
        self._ranges = [r for r in ranges if r]
        self._starts = []  # index of the first seed of each range
        total = 0
        for r in self._ranges:
            self._starts.append(total)
            total += r.stop - r.start if r.step == 1 else len(r)  # len() fails beyond sys.maxsize
        if total > sys.maxsize:
            raise ValueError(f'the list holds {total} seeds, more than any run can go through ({sys.maxsize}); '
                             'give fewer seeds')
        self._len = total

    def __len__(self):
        return self._len

    def _seed(self, index):
        part = bisect.bisect_right(self._starts, index) - 1
        return self._ranges[part][index - self._starts[part]]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._seed(i) for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError('seed index out of range')
        return self._seed(index)

    def __eq__(self, other):
        return isinstance(other, collections.abc.Sequence) and len(self) == len(other) and \
            all(a == b for a, b in zip(self, other))

    def __repr__(self):
        return f'Seeds({", ".join(f"{r.start}-{r.stop - 1}" if len(r) > 1 else str(r.start) for r in self._ranges)})'


def parse_seeds(text):
    """NVlabs' `parse_int_list`: comma-separated integers and inclusive ranges `a-b`; order and duplicates kept;
    negative single seeds allowed. Unlike NVlabs, an empty list or a reversed range is a ValueError instead of a
    crash later on."""
    ranges = []
    for part in str(text).split(','):
        part = part.strip()
        match = _RANGE.match(part)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise ValueError(f'range "{part}" is reversed; write it as {last}-{first}')
            ranges.append(range(first, last + 1))
        elif part:
            try:
                seed = int(part)
            except ValueError:
                raise ValueError(f'"{part}" is neither an integer nor a range like 0-63') from None
            ranges.append(range(seed, seed + 1))
    seeds = Seeds(ranges)
    if not len(seeds):
        raise ValueError(f'"{text}" lists no seeds; give e.g. 0-63 or 1,5,9')
    return seeds


def as_seeds(seeds):
    """A Seeds sequence from a `--seeds` string, a range, or a sequence of integers."""
    if isinstance(seeds, Seeds):
        return seeds
    if isinstance(seeds, str):
        return parse_seeds(seeds)
    if isinstance(seeds, range):
        return Seeds([seeds])
    if not isinstance(seeds, collections.abc.Iterable) or any(isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                              for seed in seeds):
        raise ArgumentError('seeds', f'must be a --seeds string (\'0-63\'), a range or a sequence of integers, got '
                                     f'{seeds!r:.80}')
    values = [int(seed) for seed in seeds]
    if not values:
        raise ValueError('seeds is empty; give at least one seed')
    return Seeds([range(seed, seed + 1) for seed in values])


def image_path(outdir, seed, subdirs=False):
    """`outdir/{seed:06d}.png`, or `outdir/{seed - seed % 1000:06d}/{seed:06d}.png` with subdirs (as NVlabs)."""
    folder = os.path.join(outdir, f'{seed - seed % 1000:06d}') if subdirs else outdir
    return os.path.join(folder, f'{seed:06d}.png')
