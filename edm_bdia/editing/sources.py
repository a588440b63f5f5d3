"""Real images for inversion and editing: an image folder, a .zip or a generate.py .npz, as the float [-1, 1]
NCHW tensors and the class labels a network takes."""

import os

import numpy as np
import torch

from edm_bdia.errors import ArgumentError
from edm_bdia.fid.datasets import check_image_sizes, open_images


class ImageSource:
    """The images of `path` (sorted like NVlabs' datasets) and, for a generate.py .npz, its class labels."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.dataset = open_images(self.path)
        self.names = [self.dataset.describe(index) for index in range(len(self.dataset))]
        self.labels = self._npz_labels()

    def __len__(self):
        return len(self.dataset)

    def _npz_labels(self):
        if not self.path.lower().endswith('.npz'):
            return None
        with np.load(self.path, allow_pickle=False) as npz:
            if 'arr_1' not in npz.files:
                return None
            labels = npz['arr_1']
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ArgumentError('images', f'{self.path} holds labels (arr_1) of dtype {labels.dtype} and shape '
                                          f'{labels.shape}, not integer class indices [N]')
        return labels.astype(np.int64)

    def check_apart_from(self, output, argument):
        """The run's output `output` (a file or folder) neither is the image source nor lies inside a source folder,
        where it would overwrite the images or join them."""
        source, target = os.path.realpath(self.path), os.path.realpath(output)
        if target == source or (os.path.isdir(source) and target.startswith(source + os.sep)):
            raise ArgumentError(argument, f'{output} is or lies inside the images {self.path}, which this run reads; '
                                          'write elsewhere')

    def check_for(self, net, encoder=None):
        """The images fit `net` (one size, the network's resolution, times the `encoder`'s pixels per latent) and
        every one of them decodes: checked before any work, so that a broken file fails the run at once, naming
        it."""
        width, height = check_image_sizes(self.dataset, range(len(self.dataset)))
        size = net.img_resolution * (1 if encoder is None else encoder.pixels_per_latent())
        if (width, height) != (size, size):
            raise ArgumentError('images', f'{self.path} holds {width}x{height} images, but the network makes '
                                          f'{size}x{size}; resize them first')
        for index in range(len(self.dataset)):
            self._image(index)

    def _image(self, index):
        """Image `index` as uint8 CHW; the source's error for a file that does not decode."""
        image = self.dataset[index]
        if isinstance(image, Exception):
            raise image
        return image

    def batch(self, indices, channels, device, encoder=None):
        """The images in the network's space, float64 NCHW: the posterior mean of an EDM2 snapshot's `encoder`
        (deterministic, so that inversion has one answer), else uint8 v -> v / 127.5 - 1 with `channels` (1: the
        first of the RGB channels, which are equal for grayscale files)."""
        images = torch.stack([self._image(int(index)) for index in indices])
        if encoder is not None:
            return encoder.encode_mean(images.to(device)).to(torch.float64)
        return (images[:, :channels].to(torch.float64) / 127.5 - 1).to(device)


def class_indices(net, source, indices, class_idx, argument='class_idx'):
    """Class index per image: `class_idx` for all, else the .npz's labels; None for an unconditional network.
    `argument` names `class_idx` in errors."""
    if not net.label_dim:
        if class_idx is not None:
            raise ArgumentError(argument, f'is {class_idx}, but the network is unconditional; drop it')
        return None
    if class_idx is not None:
        if not 0 <= class_idx < net.label_dim:
            raise ArgumentError(argument, f'is {class_idx}, but the network has {net.label_dim} classes '
                                          f'(0 to {net.label_dim - 1})')
        return np.full(len(indices), class_idx, dtype=np.int64)
    if source.labels is None:
        raise ArgumentError(argument, 'is needed: the network is class-conditional and the images carry no labels '
                                      '(only a generate.py .npz with arr_1 does); give the class of the images')
    if len(source.labels) != len(source):
        raise ArgumentError('images', f'{source.path} holds {len(source)} images but {len(source.labels)} labels')
    labels = source.labels[list(indices)]
    if labels.min() < 0 or labels.max() >= net.label_dim:
        raise ArgumentError('images', f'{source.path} has labels outside 0..{net.label_dim - 1}')
    return labels


def one_hot(net, indices, device):
    """One-hot float32 rows for class indices (None stays None)."""
    if indices is None:
        return None
    return torch.eye(net.label_dim, device=device)[torch.as_tensor(indices, device=device)]
