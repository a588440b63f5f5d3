"""What every run checks of the images it sampled before writing them: finite values."""

import torch


class NonFiniteImagesError(ValueError):
    """The sampler produced NaN or infinite values: nothing is written for those images."""


def check_finite(images, names):
    """NonFiniteImagesError naming the images (`names`, one per image) with NaN or infinite values."""
    finite = torch.isfinite(images.flatten(1)).all(dim=1)
    if not finite.all():
        bad = [name for name, ok in zip(names, finite.tolist()) if not ok]
        raise NonFiniteImagesError(f'sampling gave NaN or infinite values for {", ".join(map(str, bad[:10]))}'
                                   f'{" ..." if len(bad) > 10 else ""}; check the sampler settings (noise levels, '
                                   'S_noise, gamma) and the network')
