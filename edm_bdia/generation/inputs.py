"""The random inputs of a batch, drawn per seed in NVlabs' order (docs/generation.md, "What an image depends on")."""

import torch

from edm_bdia.samplers.rng import StackedRandomGenerator


def batch_inputs(net, seeds, device, class_idx=None):
    """-> (per-seed generators, float32 latents [B, C, H, W], float32 one-hot labels [B, label_dim] or None).

    Each seed's generator gives first its latents, then (conditional nets only) its class label, then whatever
    the sampler draws. The label is drawn even with --class, which then replaces it, as in NVlabs."""
    rnd = StackedRandomGenerator(device, seeds)
    latents = rnd.randn([len(seeds), net.img_channels, net.img_resolution, net.img_resolution], device=device)
    class_labels = None
    if net.label_dim:
        labels = rnd.randint(net.label_dim, size=[len(seeds)], device=device)
        class_labels = torch.eye(net.label_dim, device=device)[labels]
        if class_idx is not None:
            class_labels[:, :] = 0
            class_labels[:, class_idx] = 1
    return rnd, latents, class_labels


def class_indices(net, seeds, device, class_idx=None, chunk=1024):
    """The class index each seed's image was generated with (None for an unconditional net)."""
    if not net.label_dim:
        return None
    parts = []
    for start in range(0, len(seeds), chunk):
        _, _, class_labels = batch_inputs(net, seeds[start:start + chunk], device, class_idx)
        parts.append(class_labels.argmax(dim=1).cpu())
    return torch.cat(parts).numpy()
