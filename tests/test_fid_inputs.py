"""Image decoding and reference statistics files: explicit mode conversions, EDM .npz round trip, EDM2 .pkl
through the restricted unpickler, registry shipped with the package."""

import io
import json
import os
import pickle

import numpy as np
import PIL.Image
import pytest

from edm_bdia.fid import refs
from edm_bdia.fid.datasets import ImageSourceError, decode_image, open_images, select_indices

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _encode(image, fmt='PNG'):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_grayscale_is_repeated_to_three_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = decode_image(_encode(PIL.Image.fromarray(gray)), 'g.png').numpy()
    assert out.shape == (3, 3, 4) and (out == gray).all()


def test_palette_rgba_and_la_become_rgb_colours():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((4, 5), 7, np.uint8)])
    assert (decode_image(_encode(PIL.Image.fromarray(rgba)), 'a.png').numpy() == rgb.transpose(2, 0, 1)).all()
    palette = PIL.Image.fromarray(rgb).quantize(colors=256)
    expected = np.asarray(palette.convert('RGB')).transpose(2, 0, 1)  # colours, not palette indices
    assert (decode_image(_encode(palette), 'p.png').numpy() == expected).all()
    la = PIL.Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), mode='LA')
    assert (decode_image(_encode(la), 'la.png').numpy() == rgb[..., 0]).all()


def test_16_bit_is_rounded_to_8_bit():
    values = np.array([[0, 128, 257, 65535]], dtype=np.uint16)
    out = decode_image(_encode(PIL.Image.fromarray(values)), 'd.png').numpy()
    assert out[0, 0].tolist() == [0, 0, 1, 255]  # round(v * 255 / 65535)


def test_unreadable_image_error_names_the_file():
    with pytest.raises(ImageSourceError, match='broken.png'):
        decode_image(b'garbage', 'broken.png')


def test_folder_listing_is_recursive_sorted_and_filtered(tmp_path):
    for name in ('b/1.png', 'a.JPG', 'b/0.png', 'notes.txt', 'c.png'):
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        PIL.Image.new('RGB', (2, 2)).save(tmp_path / name, format='PNG') if name != 'notes.txt' else \
            (tmp_path / name).write_text('x')
    assert open_images(tmp_path).names == ['a.JPG', 'b/0.png', 'b/1.png', 'c.png']


def test_bad_sources_are_explained(tmp_path):
    with pytest.raises(ImageSourceError, match='does not exist'):
        open_images(tmp_path / 'missing')
    with pytest.raises(ImageSourceError, match='no images found'):
        open_images(tmp_path)
    np.savez(tmp_path / 'x.npz', images=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ImageSourceError, match="'arr_0'"):
        open_images(tmp_path / 'x.npz')


def test_subset_rule_matches_nvlabs():
    chosen = np.arange(30)
    np.random.RandomState(5).shuffle(chosen)
    assert select_indices(30, 12, seed=5).tolist() == sorted(chosen[:12].tolist())
    assert select_indices(30, 12, seed=5 + 2 ** 31).tolist() == select_indices(30, 12, seed=5).tolist()
    assert select_indices(12, 12).tolist() == list(range(12))
    with pytest.raises(ImageSourceError, match='Found 3 images, but expected at least 4'):
        select_indices(3, 4)


def test_npz_round_trip_is_edm_format(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 6))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    path = refs.save_reference(str(tmp_path / 'deep' / 'stats.npz'), mu, sigma)
    with np.load(path) as npz:  # what EDM's fid.py calc reads
        assert (npz['mu'] == mu).all() and (npz['sigma'] == sigma).all()
    loaded = refs.load_reference(path)
    assert (loaded[0] == mu).all() and (loaded[1] == sigma).all()


def test_edm2_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ('echo owned',))
    with open(tmp_path / 'evil.pkl', 'wb') as file:
        pickle.dump(dict(fid=dict(mu=Evil(), sigma=np.eye(2))), file)
    with pytest.raises(refs.ReferenceStatsError, match='not an EDM'):
        refs.load_reference(str(tmp_path / 'evil.pkl'))


def test_non_symmetric_sigma_is_rejected(tmp_path):
    refs.save_reference(str(tmp_path / 's.npz'), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(refs.ReferenceStatsError, match='not symmetric'):
        refs.load_reference(str(tmp_path / 's.npz'))


def test_packaged_registry_is_identical_to_fid_refs_registry():
    with open(os.path.join(REPO, 'fid_refs', 'registry.json')) as file:
        assert json.load(file)['references'] == refs.registry()
    with open(os.path.join(REPO, 'edm_bdia', 'data', 'fid_refs.json'), 'rb') as a, \
            open(os.path.join(REPO, 'fid_refs', 'registry.json'), 'rb') as b:
        assert a.read() == b.read()


def test_registry_covers_nvidias_published_statistics_and_presets():
    registry = refs.registry()
    assert set(registry) == {'cifar10-32x32', 'ffhq-64x64', 'afhqv2-64x64', 'imagenet-64x64',
                             'imagenet-64x64-baseline'}
    for name, entry in registry.items():
        assert entry['url'] == f'https://nvlabs-fi-cdn.nvidia.com/edm/fid-refs/{name}.npz'
        assert all(f'-{name.replace("-baseline", "")}-' in ckpt for ckpt in entry['checkpoints'])
    assert registry['imagenet-64x64']['checkpoints'] == ['edm-imagenet-64x64-cond-adm']
    assert registry['imagenet-64x64-baseline']['checkpoints'] == ['baseline-imagenet-64x64-cond-adm']
