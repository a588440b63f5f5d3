"""Metrics in the library: the metric list, fid + fd_dinov2 in one pass equal to two separate passes (each image
read once), EDM2 statistics files written and read back (as NVlabs reads them, and under pickle protocol 5), EDM
.npz files as FID-only, a missing metric refused before any work, and a library that never imports click."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from edm_bdia.errors import ArgumentError
from edm_bdia.fid import refs
from edm_bdia.fid.datasets import open_images
from edm_bdia.fid.extract import extract_statistics
from edm_bdia.fid.metrics import parse_metrics
from edm_bdia.fid.pipeline import open_pipeline
from helpers.fid import save_metric_detectors, save_random_pngs

pytestmark = pytest.mark.usefixtures('one_thread')
NUM_IMAGES = 10


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('metrics')
    save_random_pngs(folder / 'images', NUM_IMAGES)
    return dict(images=str(folder / 'images'), **save_metric_detectors(folder))


def test_metric_lists():
    assert parse_metrics('fid,fd_dinov2') == ('fid', 'fd_dinov2')
    assert parse_metrics(' fd_dinov2 , fid,fid') == ('fd_dinov2', 'fid')
    assert parse_metrics(['fid']) == ('fid',)
    with pytest.raises(ArgumentError, match='^metrics kid: unknown metric; choose from fid, fd_dinov2$'):
        parse_metrics('fid,kid')
    with pytest.raises(ArgumentError, match=r'^metrics \(empty\): unknown metric'):
        parse_metrics([])


class _CountingImages:
    """An image source that counts the images it decodes."""

    def __init__(self, dataset):
        self.dataset, self.reads = dataset, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        self.reads += 1
        return self.dataset[index]


def _statistics(files, metrics):
    dataset = _CountingImages(open_images(files['images']))
    pipeline, infos = open_pipeline(metrics, detector=files['detector'], dinov2=files['dinov2'])
    extract_statistics(dataset, pipeline, range(NUM_IMAGES), batch_size=4)
    return pipeline.statistics(), dataset.reads, infos


def test_one_pass_with_both_metrics_equals_two_passes_and_reads_each_image_once(files):
    both, reads, infos = _statistics(files, ('fid', 'fd_dinov2'))
    fid_alone, _, _ = _statistics(files, ('fid',))
    dino_alone, _, _ = _statistics(files, ('fd_dinov2',))
    assert reads == NUM_IMAGES  # two passes read every image twice
    assert set(infos) == {'fid', 'fd_dinov2'} and infos['fd_dinov2']['architecture'].startswith('ViT 128 wide')
    for metric, alone in (('fid', fid_alone['fid']), ('fd_dinov2', dino_alone['fd_dinov2'])):
        assert np.array_equal(both[metric][0], alone[0]) and np.array_equal(both[metric][1], alone[1])
    assert both['fid'][0].shape == (64,) and both['fd_dinov2'][1].shape == (128, 128)


def _statistics_of_sizes(seed=0, dims=(('fid', 6), ('fd_dinov2', 4))):
    rng = np.random.default_rng(seed)
    statistics = {}
    for metric, dim in dims:
        x = rng.standard_normal((20, dim))
        statistics[metric] = (x.mean(0), np.cov(x, rowvar=False))
    return statistics


def test_edm2_statistics_round_trip_in_nvlabs_layout(tmp_path):
    statistics = _statistics_of_sizes()
    path = refs.save_statistics_pickle(str(tmp_path / 'deep' / 'stats.pkl'), statistics, num_images=20)
    with open(path, 'rb') as file:
        data = pickle.load(file)  # what NVlabs' load_stats does
    assert sorted(data) == ['fd_dinov2', 'fid', 'num_images'] and data['num_images'] == 20
    for metric, (mu, sigma) in statistics.items():
        assert sorted(data[metric]) == ['mu', 'sigma'] and data[metric]['sigma'].dtype == np.float64
        assert np.array_equal(data[metric]['mu'], mu) and np.array_equal(data[metric]['sigma'], sigma)
    loaded = refs.load_references(path, ('fd_dinov2', 'fid'))
    assert list(loaded) == ['fd_dinov2', 'fid']
    for metric, (mu, sigma) in statistics.items():
        assert np.array_equal(loaded[metric][0], mu) and np.array_equal(loaded[metric][1], sigma)


def test_statistics_pickled_with_protocol_5_are_read(tmp_path):
    """Python 3.14 pickles with protocol 5, where numpy stores arrays through `_frombuffer`."""
    statistics = _statistics_of_sizes(seed=1)
    with open(tmp_path / 'p5.pkl', 'wb') as file:
        pickle.dump(dict(num_images=20, **{m: dict(mu=mu, sigma=s) for m, (mu, s) in statistics.items()}), file,
                    protocol=5)
    loaded = refs.load_references(str(tmp_path / 'p5.pkl'), ('fid', 'fd_dinov2'))
    assert all(np.array_equal(loaded[m][1], statistics[m][1]) for m in statistics)


def test_edm_npz_is_fid_only_and_a_missing_metric_is_named(tmp_path):
    statistics = _statistics_of_sizes()
    npz = refs.save_reference(str(tmp_path / 'edm.npz'), *statistics['fid'])
    assert np.array_equal(refs.load_references(npz)['fid'][0], statistics['fid'][0])
    with pytest.raises(refs.ReferenceStatsError, match=r'^reference \S+edm.npz: an EDM .npz holds FID \(Inception\) '
                                                       r'statistics only, none for fd_dinov2; use EDM2 .pkl statistics '
                                                       r'\(img512, img64 or your own\) or leave fd_dinov2 out of '
                                                       r'metrics$'):
        refs.load_references(npz, ('fid', 'fd_dinov2'))
    fid_only = refs.save_statistics_pickle(str(tmp_path / 'fid_only.pkl'), {'fid': statistics['fid']}, 20)
    with pytest.raises(refs.ReferenceStatsError, match=r"fid_only.pkl: the file has no 'fd_dinov2' statistics \(it "
                                                       r'has: fid\); leave fd_dinov2 out of metrics'):
        refs.load_reference(fid_only, 'fd_dinov2')


def test_statistics_destinations(tmp_path):
    statistics = _statistics_of_sizes()
    assert refs.statistics_file_format('a/b.PKL') == 'pkl' and refs.statistics_file_format('a/b') == 'npz'
    with pytest.raises(ArgumentError, match=r'^dest \S+b.npz: an EDM .npz holds FID statistics only; name the file '
                                            r'.pkl to save fid, fd_dinov2'):
        refs.save_statistics(str(tmp_path / 'b.npz'), statistics, 20, 'npz')
    assert not os.path.exists(tmp_path / 'b.npz')
    npz = refs.save_statistics(str(tmp_path / 'c'), {'fid': statistics['fid']}, 20, 'npz')
    assert npz == str(tmp_path / 'c.npz')
    pkl = refs.save_statistics(str(tmp_path / 'd.stats'), statistics, 20, 'pkl')  # as given, like NVlabs
    assert pkl == str(tmp_path / 'd.stats') and set(refs.load_references(pkl, statistics)) == set(statistics)


def test_the_metrics_library_does_not_import_click():
    modules = ('edm_bdia.fid.metrics', 'edm_bdia.fid.extract', 'edm_bdia.fid.dinov2_weights', 'edm_bdia.generation.fid')
    code = f'import sys, {", ".join(modules)}; print("click" in sys.modules)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.stdout.split() == ['False']
