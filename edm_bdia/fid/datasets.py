"""Image sources for FID: folders (recursive), zip archives and generate.py ``.npz`` files, as uint8 CHW RGB.

File selection follows NVlabs' ``ImageFolderDataset`` (docs/fid.md, 'Image sources'): every file whose lower-case
extension is in ``PIL.Image.EXTENSION``, sorted by relative path. 8-bit RGB and grayscale decode exactly as in EDM
(gray is repeated to 3 channels); modes EDM misreads or rejects are converted explicitly (docs/fid.md, 'Mode
conversions'): palette, RGBA, LA, CMYK, 1-bit -> RGB (alpha dropped), 16-bit -> 8-bit by rounding v * 255 / 65535.

``check_image_sizes`` reads only the file headers, so images of different sizes (which NVlabs' loader refuses too)
are found before any image is decoded. Decoding errors are returned, not raised, by ``__getitem__`` so that a
DataLoader worker hands them to the main process intact; ``collate_images`` passes the first one on and the caller
raises it.
"""

import io
import os
import zipfile

import numpy as np
import PIL.Image
import torch

from edm_bdia.fid.errors import FidArgumentError


class ImageSourceError(FidArgumentError):
    """An image source that cannot be used (argument `images`; `num` when it holds too few images): missing,
    empty, unreadable, corrupt or inconsistent. The message starts with the folder, archive or file at fault."""


def image_extensions():
    PIL.Image.init()  # registers every plugin, so EXTENSION is complete
    return set(PIL.Image.EXTENSION)


def _image_names(names):
    extensions = image_extensions()
    return [name for name in names if os.path.splitext(name)[1].lower() in extensions]


def _to_rgb_array(image: PIL.Image.Image) -> np.ndarray:
    """HWC uint8 RGB from any PIL mode (see the module docstring for the conversions)."""
    if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        values = np.asarray(image).astype(np.int64)
        gray = ((values.clip(0, 65535) * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == 'L':
        gray = np.asarray(image)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == 'LA':
        image = image.convert('L')
        return _to_rgb_array(image)
    if image.mode != 'RGB':
        image = image.convert('RGB')  # P, RGBA, CMYK, 1, YCbCr, ...
    return np.asarray(image)


def decode_image(data: bytes, name: str) -> torch.Tensor:
    """uint8 CHW RGB tensor from encoded image bytes; ImageSourceError naming the file on failure."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            array = _to_rgb_array(image)
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as exc:
        raise _unreadable(name, exc) from None
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _unreadable(name, exc):
    if isinstance(exc, PIL.UnidentifiedImageError):
        return ImageSourceError('images', f'{name}: not a recognisable image (corrupt, truncated or an unsupported '
                                          'format)')
    return ImageSourceError('images', f'{name}: cannot read the image ({exc})')


class _EncodedImages(torch.utils.data.Dataset):
    """Sorted list of encoded image files; subclasses provide ``_open(name)`` (a binary file) and
    ``_read(name) -> bytes``."""

    def __init__(self, path, names):
        self.path = path
        self.names = sorted(_image_names(names))

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        name = self.describe(index)
        try:
            return decode_image(self._read(self.names[index]), name)
        except ImageSourceError as exc:
            return exc
        except (OSError, zipfile.BadZipFile) as exc:
            return _unreadable(name, exc)

    def image_size(self, index):
        """(width, height) of image `index` from its header, without decoding the pixels."""
        try:
            with self._open(self.names[index]) as file, PIL.Image.open(file) as image:
                return image.size
        except (OSError, SyntaxError, ValueError, zipfile.BadZipFile, PIL.Image.DecompressionBombError) as exc:
            raise _unreadable(self.describe(index), exc) from None

    def describe(self, index):
        """The image's name in messages."""
        return os.path.join(self.path, self.names[index])


class ImageFolder(_EncodedImages):
    """Every image file below ``path`` (recursive), ordered by relative path."""

    def __init__(self, path):
        names = [os.path.relpath(os.path.join(root, file), path)
                 for root, _dirs, files in os.walk(path) for file in files]
        super().__init__(path, names)

    def _open(self, name):
        return open(os.path.join(self.path, name), 'rb')

    def _read(self, name):
        with self._open(name) as file:
            return file.read()


class ImageZip(_EncodedImages):
    """Every image member of a zip archive, ordered by member name; each process opens its own handle."""

    def __init__(self, path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        super().__init__(path, names)
        self._archive, self._pid = None, None

    def _zip(self):
        if self._pid != os.getpid():  # a zipfile handle must not be shared across worker processes
            self._archive, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._archive

    def _open(self, name):
        return self._zip().open(name)

    def _read(self, name):
        return self._zip().read(name)

    def __getstate__(self):
        return dict(self.__dict__, _archive=None, _pid=None)


class NpzImages(torch.utils.data.Dataset):
    """Images saved by generate.py as ``.npz``: ``arr_0`` uint8 NHWC, RGB or grayscale."""

    def __init__(self, path):
        try:
            with np.load(path, allow_pickle=False) as npz:
                images = npz['arr_0'] if 'arr_0' in npz.files else npz.files
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ImageSourceError('images', f'{path}: cannot read the .npz ({exc})') from None
        if isinstance(images, list):
            raise ImageSourceError('images', f"{path}: expected an 'arr_0' image array (generate.py .npz), found "
                                             f'{images}')
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
            raise ImageSourceError('images', f'{path}: arr_0 must be uint8 NHWC with 1 or 3 channels, got '
                                             f'{images.dtype} {images.shape}')
        self.path = path
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index].expand(3, -1, -1).contiguous()

    def image_size(self, index):
        """(width, height): one array, one size."""
        return self.images.shape[3], self.images.shape[2]

    def describe(self, index):
        """The image's name in messages."""
        return f'{self.path}[{index}]'


def open_images(path):
    """The dataset for a folder, a ``.zip`` or a generate.py ``.npz``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        dataset = ImageFolder(path)
    elif os.path.isfile(path) and path.lower().endswith('.zip'):
        try:
            dataset = ImageZip(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ImageSourceError('images', f'{path}: cannot read the zip archive ({exc})') from None
    elif os.path.isfile(path) and path.lower().endswith('.npz'):
        dataset = NpzImages(path)
    elif not os.path.exists(path):
        raise ImageSourceError('images', f'{path} does not exist; pass an image folder, a .zip or a generate.py .npz')
    else:
        raise ImageSourceError('images', f'{path} is not a folder, .zip or .npz')
    if len(dataset) == 0:
        raise ImageSourceError('images', f'{path}: no images found (image files are recognised by their extension: '
                                         '.png, .jpg, .webp, ...)')
    return dataset


def check_image_sizes(dataset, indices):
    """(width, height) shared by the images `indices` of `dataset`, read from the file headers (cheap: no pixels
    are decoded); ImageSourceError naming two images of different sizes, or an unreadable one."""
    first = None
    for index in indices:
        size = dataset.image_size(int(index))
        if first is None:
            first = (size, index)
        elif size != first[0]:
            (w0, h0), i0 = first
            raise ImageSourceError('images', f'{dataset.path}: images of different sizes: {dataset.describe(int(i0))} '
                                             f'is {w0}x{h0} pixels, {dataset.describe(int(index))} is '
                                             f'{size[0]}x{size[1]}; FID needs images of one size: resize them to one '
                                             'size first')
    return first[0] if first else None


def select_indices(total: int, num=None, seed: int = 0) -> np.ndarray:
    """EDM's subset rule (docs/fid.md, 'Subset rule'): all images when ``num`` is None, else a sorted random
    ``num``-subset drawn with ``RandomState(seed % 2**31).shuffle``; too few images is an error in EDM's words."""
    indices = np.arange(total)
    if num is None:
        return indices
    if total < num:
        raise ImageSourceError('num', f'{num}: Found {total} images, but expected at least {num}; lower `num` to at '
                                      f'most {total} or add images')
    if total > num:
        np.random.RandomState(seed % (1 << 31)).shuffle(indices)
        indices = np.sort(indices[:num])
    return indices


def collate_images(items):
    """Stack uint8 CHW images into NCHW; return the first decoding error instead, or one for a size mismatch."""
    for item in items:
        if isinstance(item, Exception):
            return item
    shapes = {tuple(item.shape) for item in items}
    if len(shapes) > 1:
        return ImageSourceError('images', f'hold images of different sizes in one batch {sorted(shapes)}; FID needs '
                                          'equal sizes')
    return torch.stack(items)
