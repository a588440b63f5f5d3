"""Small steps shared by SongUNet and DhariwalUNet (edm-networks.md §3-§4)."""

import torch


def level_prefix(img_resolution, level):
    """Key prefix of the enc/dec entries at a UNet level, e.g. '16x16_' for level 1 of a 32-pixel net."""
    res = img_resolution >> level
    return f'{res}x{res}_'


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
