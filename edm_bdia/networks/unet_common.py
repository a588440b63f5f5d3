"""Small steps shared by SongUNet and DhariwalUNet (docs/networks.md, 'Architectures')."""

import torch

from edm_bdia.networks.unet_block import UNetBlock


def unet_levels(img_resolution, channel_mult):
    """(level, mult, res, key prefix) per UNet level, e.g. (1, 2, 16, '16x16_') for a 32-pixel net."""
    return [(level, mult, img_resolution >> level, f'{img_resolution >> level}x{img_resolution >> level}_')
            for level, mult in enumerate(channel_mult)]


def drop_class_labels(labels, label_dropout, training, batch_size):
    """Training-only label dropout: zero whole rows of a [batch_size, 1] mask with probability `label_dropout`."""
    if training and label_dropout:
        keep = torch.rand([batch_size, 1], device=labels.device) >= label_dropout
        labels = labels * keep.to(labels.dtype)
    return labels


def concat_skip(x, skips, block):
    """Decoder input: [x, skip] along channels when the block expects more channels than x has (x first)."""
    if x.shape[1] != block.in_channels:
        x = torch.cat([x, skips.pop()], dim=1)
    return x


def add_encoder_blocks(enc, prefix, cout, level_channels, num_blocks, attention, block_kwargs):
    """Append `block0..` (num_blocks UNetBlocks, the first changing cout to level_channels); returns cout."""
    for idx in range(num_blocks):
        cin, cout = cout, level_channels
        enc[prefix + f'block{idx}'] = UNetBlock(cin, cout, attention=attention, **block_kwargs)
    return cout


def add_decoder_level(dec, prefix, innermost, cout, skips, level_channels, num_blocks, attention, block_kwargs):
    """Append one decoder level: `in0` (with attention) and `in1` at the innermost level, else an `up` block;
    then num_blocks + 1 blocks, each widened by one popped skip. `attention(idx)` says which blocks attend.
    Returns the new cout."""
    if innermost:
        dec[prefix + 'in0'] = UNetBlock(cout, cout, attention=True, **block_kwargs)
        dec[prefix + 'in1'] = UNetBlock(cout, cout, **block_kwargs)
    else:
        dec[prefix + 'up'] = UNetBlock(cout, cout, up=True, **block_kwargs)
    for idx in range(num_blocks + 1):
        cin, cout = cout + skips.pop(), level_channels
        dec[prefix + f'block{idx}'] = UNetBlock(cin, cout, attention=attention(idx), **block_kwargs)
    return cout
