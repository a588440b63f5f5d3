"""Seeds: parsing `--seeds`, and where each seed's image goes."""

import os
import re

_RANGE = re.compile(r'^(\d+)-(\d+)$')


def parse_seeds(text):
    """NVlabs' `parse_int_list` (edm-format.md §3.2): comma-separated integers and inclusive ranges `a-b`; order
    and duplicates kept; negative single seeds allowed. Unlike NVlabs, an empty list or a reversed range is a
    ValueError instead of a crash later on."""
    seeds = []
    for part in str(text).split(','):
        part = part.strip()
        match = _RANGE.match(part)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise ValueError(f'range "{part}" is reversed; write it as {last}-{first}')
            seeds.extend(range(first, last + 1))
        elif part:
            try:
                seeds.append(int(part))
            except ValueError:
                raise ValueError(f'"{part}" is neither an integer nor a range like 0-63') from None
    if not seeds:
        raise ValueError(f'"{text}" lists no seeds; give e.g. 0-63 or 1,5,9')
    return seeds


def image_path(outdir, seed, subdirs=False):
    """`outdir/{seed:06d}.png`, or `outdir/{seed - seed % 1000:06d}/{seed:06d}.png` with --subdirs (§3.6)."""
    folder = os.path.join(outdir, f'{seed - seed % 1000:06d}') if subdirs else outdir
    return os.path.join(folder, f'{seed:06d}.png')
