"""Image decoding, image sizes from headers, reference statistics files: explicit mode conversions, EDM .npz round
trip, EDM2 .pkl through the restricted unpickler, checks before extraction, the registry and who uses it."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest

from edm_bdia.fid import frechet, refs
from edm_bdia.checkpoints.presets import PRESETS
from edm_bdia.errors import ArgumentError
from edm_bdia.fid.datasets import ImageSourceError, check_image_sizes, decode_image, open_images, select_indices

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
    with open(tmp_path / 'objects.pkl', 'wb') as file:  # object arrays would hold arbitrary pickled objects
        pickle.dump(dict(fid=dict(mu=np.array([None, 1], dtype=object), sigma=np.eye(2))), file)
    with pytest.raises(refs.ReferenceStatsError, match='not on the allow-list'):
        refs.load_reference(str(tmp_path / 'objects.pkl'))


def test_non_symmetric_sigma_is_rejected(tmp_path):
    refs.save_reference(str(tmp_path / 's.npz'), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(refs.ReferenceStatsError,
                       match=r'reference \S+s.npz: the fid statistics: sigma is not symmetric'):
        refs.load_reference(str(tmp_path / 's.npz'))


@pytest.mark.parametrize('mu, sigma, message', [
    (np.zeros(3), -np.eye(3), r'sigma has the negative eigenvalue -1 \(largest -1\)'),
    (np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), 'sigma has the negative eigenvalue -1 \\(largest 3\\)'),
    (np.full(2, 1e200), np.eye(2) * 1e200, "values up to 1e\\+200 are no detector's feature statistics"),
])
def test_statistics_that_are_no_covariance_or_too_large_are_rejected(tmp_path, mu, sigma, message):
    """sigma = -I once gave FID 490.9 and 1e200-scale statistics inf, both printed as results."""
    refs.save_reference(str(tmp_path / 's.npz'), mu, sigma)
    with pytest.raises(refs.ReferenceStatsError, match=rf'reference \S+s.npz: the fid statistics: {message}'):
        refs.load_reference(str(tmp_path / 's.npz'))


def test_rank_deficient_covariances_of_few_images_are_accepted():
    """A covariance of fewer images than dimensions has zero eigenvalues, which rounding makes slightly negative."""
    features = np.random.default_rng(0).normal(size=(50, 200)) * 3
    sigma = np.cov(features, rowvar=False)
    assert np.linalg.eigvalsh(sigma)[0] < 0  # rounding below zero
    mu, checked = frechet.checked_statistics(features.mean(0), sigma, 'few images')
    assert checked is not None and mu.shape == (200,)


def test_the_registry_exists_once_and_its_users_come_from_the_presets():
    packaged = [os.path.join(root, name) for root, _dirs, files in os.walk(os.path.join(REPO, 'edm_bdia'))
                for name in files if name.endswith('.json') and name != 'presets.json']
    assert packaged == []  # no copy inside the package folder: setup.py ships fid_refs/ as edm_bdia.fid_refs
    with open(os.path.join(REPO, 'fid_refs', 'registry.json')) as file:
        stored = json.load(file)['references']
    assert all('checkpoints' not in entry for entry in stored.values())  # the link lives in the presets only
    registry = refs.registry()
    for name, entry in registry.items():
        assert entry == dict(stored[name], checkpoints=[p.name for p in PRESETS.values() if p.fid_ref == name])


def test_registry_covers_nvidias_published_statistics_and_presets():
    registry = refs.registry()
    edm, edm2 = {'cifar10-32x32', 'ffhq-64x64', 'afhqv2-64x64', 'imagenet-64x64', 'imagenet-64x64-baseline'}, {
        'img512', 'img64'}
    assert set(registry) == edm | edm2
    for name in edm:
        assert registry[name]['url'] == f'https://nvlabs-fi-cdn.nvidia.com/edm/fid-refs/{name}.npz'
        assert all(f'-{name.replace("-baseline", "")}-' in ckpt for ckpt in registry[name]['checkpoints'])
    for name in edm2:  # EDM2's calculate_metrics.py statistics: fid and fd_dinov2 in one pickle
        assert registry[name]['url'] == f'https://nvlabs-fi-cdn.nvidia.com/edm2/dataset-refs/{name}.pkl'
        assert all(f'edm2-{name}-' in ckpt for ckpt in registry[name]['checkpoints'])
    assert registry['imagenet-64x64']['checkpoints'] == ['edm-imagenet-64x64-cond-adm']
    assert registry['imagenet-64x64-baseline']['checkpoints'] == ['baseline-imagenet-64x64-cond-adm']
    assert {preset.fid_ref for preset in PRESETS.values()} - {None} <= set(registry)


def test_reference_of_another_feature_size_is_refused_before_extraction(tmp_path):
    path = refs.save_reference(str(tmp_path / 'r'), np.zeros(6), np.eye(6))
    assert path == str(tmp_path / 'r.npz') == refs.npz_path(tmp_path / 'r')
    references = refs.load_references(path, ['fid'])
    assert refs.check_feature_dims(references, {'fid': 6}, path) is references
    mu, sigma = references['fid']
    assert (mu == 0).all() and (sigma == np.eye(6)).all()
    with pytest.raises(refs.ReferenceStatsError, match=r'r.npz: the fid statistics have 6 features but its detector '
                                                       r'gives 2048; use reference statistics computed with the '
                                                       r'same detector') as error:
        refs.check_feature_dims(references, {'fid': 2048}, path)
    assert isinstance(error.value, ArgumentError) and error.value.argument == 'reference'


def test_missing_reference_names_the_choices(tmp_path):
    with pytest.raises(refs.ReferenceStatsError, match=r'^reference \S+nothing.npz: no such file: .*one of: '
                                                       r'cifar10-32x32, ffhq-64x64'):
        refs.load_reference(str(tmp_path / 'nothing.npz'))


def _save_images(folder, sizes):
    os.makedirs(folder, exist_ok=True)
    for i, (width, height) in enumerate(sizes):
        PIL.Image.new('RGB', (width, height), (i, 2 * i, 3 * i)).save(folder / f'{i:02d}.png')


def test_mixed_image_sizes_are_found_from_the_headers(tmp_path, monkeypatch):
    _save_images(tmp_path / 'same', [(16, 12)] * 5)
    _save_images(tmp_path / 'mixed', [(16, 12)] * 4 + [(32, 32)])
    monkeypatch.setattr(np, 'asarray', lambda *args, **kwargs: pytest.fail('decoded pixels'))  # headers only
    assert check_image_sizes(open_images(tmp_path / 'same'), range(5)) == (16, 12)
    mixed = open_images(tmp_path / 'mixed')
    assert check_image_sizes(mixed, [0, 1, 2]) == (16, 12)  # only the selected images count
    with pytest.raises(ImageSourceError, match=r'images of different sizes: \S+00.png is 16x12 pixels, \S+04.png '
                                               r'is 32x32; FID needs images of one size'):
        check_image_sizes(mixed, range(5))


def test_image_sizes_inside_a_zip_and_a_corrupt_header(tmp_path):
    _save_images(tmp_path / 'mixed', [(8, 8), (8, 8), (9, 8)])
    with zipfile.ZipFile(tmp_path / 'mixed.zip', 'w') as archive:
        for name in sorted(os.listdir(tmp_path / 'mixed')):
            archive.write(tmp_path / 'mixed' / name, f'sub/{name}')
    with pytest.raises(ImageSourceError, match=r'mixed.zip/sub/00.png is 8x8 pixels, \S+/sub/02.png is 9x8'):
        check_image_sizes(open_images(tmp_path / 'mixed.zip'), range(3))
    (tmp_path / 'mixed' / '01.png').write_bytes(b'not a png')
    with pytest.raises(ImageSourceError, match='01.png: not a recognisable image'):
        check_image_sizes(open_images(tmp_path / 'mixed'), range(3))
    np.savez(tmp_path / 'g.npz', arr_0=np.zeros((3, 5, 7, 3), np.uint8))
    assert check_image_sizes(open_images(tmp_path / 'g.npz'), range(3)) == (7, 5)
