"""torch_utils.persistence (pickle format version 6, docs/checkpoints.md) and torch_utils.misc."""

import importlib
import pickle
import sys
import warnings

import numpy as np
import pytest
import torch

from torch_utils import misc, persistence
from helpers.persistence import (TRAINING_MODULE, TRAINING_SRC, read_stream, run_python, training_snapshot,
                                       write_training_module)


@pytest.fixture(scope='module')
def training(tmp_path_factory):
    """The tiny training module, imported from a temporary directory (its source file is TRAINING_SRC)."""
    directory = write_training_module(tmp_path_factory.mktemp('training'))
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module(TRAINING_MODULE)
        yield module
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(TRAINING_MODULE, None)


def _snapshot(training):
    torch.manual_seed(0)
    return training_snapshot(ema=training.TinyDenoiser(channels=4), loss_fn=training.EDMLoss(P_mean=-1.0),
                             augment_pipe=training.AugmentPipe(p=0.25), dataset_kwargs=dict(path='data.zip'))


def test_pickle_layout_matches_format_version_6(training):
    metas, stream_globals, _ = read_stream(pickle.dumps(_snapshot(training)))
    assert stream_globals == {  # the globals an NVlabs training snapshot names
        ('torch_utils.persistence', '_reconstruct_persistent_obj'), ('torch.nn.modules.container', 'ModuleDict'),
        ('torch._utils', '_rebuild_parameter'), ('torch._utils', '_rebuild_tensor_v2'),
        ('torch.storage', '_load_from_bytes'), ('collections', 'OrderedDict'),
        ('numpy._core.multiarray', 'scalar'), ('numpy', 'dtype')}
    # inner objects are rebuilt first: TinyLayer inside TinyDenoiser, then the plain objects
    assert [meta['class_name'] for meta in metas] == ['TinyLayer', 'TinyDenoiser', 'EDMLoss', 'AugmentPipe']
    for meta in metas:
        assert list(meta) == ['type', 'version', 'module_src', 'class_name', 'state']
        assert meta['type'] == 'class' and meta['version'] == 6
        assert meta['module_src'] == TRAINING_SRC  # the whole defining module, verbatim
    loss_state = metas[2]['state']
    assert loss_state == dict(P_mean=-1.0, P_std=1.2, sigma_data=0.5, _init_args=(), _init_kwargs=dict(P_mean=-1.0))
    denoiser_state = metas[1]['state']
    assert denoiser_state['training'] is False and denoiser_state['_init_kwargs'] == dict(channels=4)
    assert set(denoiser_state['_parameters']) == {'weight'} and set(denoiser_state['_buffers']) == {'offset'}


def test_init_arguments_are_deep_copies(training):
    init = dict(init_weight=0.5)
    net = training.TinyDenoiser(4, init=init)
    init['init_weight'] = 99.0
    assert net._init_args == (4,) and net._init_kwargs == dict(init=dict(init_weight=0.5))
    kwargs = net.init_kwargs
    kwargs.init['init_weight'] = 7.0  # attribute access works, and the copy is independent
    assert net._init_kwargs['init']['init_weight'] == 0.5
    assert persistence.is_persistent(net) and persistence.is_persistent(training.TinyDenoiser)
    assert not persistence.is_persistent(torch.nn.Linear(2, 2)) and not persistence.is_persistent({})
    assert type(net).__name__ == 'TinyDenoiser' and type(net).__module__ == TRAINING_MODULE


def test_unpicklable_attribute_fails_at_construction():
    @persistence.persistent_class
    class HoldsLock:  # defined in this test module, whose source inspect can read
        def __init__(self):
            self.lock = __import__('threading').Lock()
    with pytest.raises(TypeError, match='lock'):
        HoldsLock()


def test_fresh_process_executes_embedded_source(training, tmp_path):
    """A process that never imported tiny_training rebuilds everything from the source in the pickle."""
    data = _snapshot(training)
    x = torch.linspace(-1, 1, 12).reshape(3, 4)
    torch.save(dict(x=x, expected=data['ema'](x)), tmp_path / 'io.pt')
    with open(tmp_path / 'snapshot.pkl', 'wb') as file:
        pickle.dump(data, file)
    code = f'''
import pickle, sys, torch
with open({str(tmp_path / 'snapshot.pkl')!r}, 'rb') as f:
    data = pickle.load(f)
assert {TRAINING_MODULE!r} not in sys.modules
io = torch.load({str(tmp_path / 'io.pt')!r})
net = data['ema']
print(type(net).__module__.startswith('_imported_module_'))
print(torch.equal(net(io['x']), io['expected']))
print(type(net.blocks['inner']).__module__ == type(net).__module__)  # one exec per source text
print(data['loss_fn'].P_mean, data['augment_pipe'].p, data['dataset_kwargs'])
print(torch.equal(data['augment_pipe'](torch.ones(2)), torch.full((2,), 0.75)))  # calls misc.constant
again = pickle.loads(pickle.dumps(data))  # re-pickled objects name torch_utils.persistence again
print(type(again['ema']) is type(net), torch.equal(again['ema'](io['x']), io['expected']))
'''
    lines = run_python(code).split('\n')
    assert lines[:5] == ['True', 'True', 'True', "-1.0 0.25 {'path': 'data.zip'}", 'True']
    assert lines[5] == 'True True'


def test_import_hook_can_rewrite_the_source(training):
    blob = pickle.dumps(_snapshot(training)['loss_fn'])
    seen = []

    def patch(meta):
        seen.append(meta.class_name)
        meta.module_src = meta.module_src.replace('self.P_mean = P_mean', 'self.P_mean = P_mean * 10')
        return meta
    persistence.import_hook(patch)
    try:
        loss = pickle.loads(blob)
    finally:
        persistence._import_hooks.remove(patch)
    # state is restored without calling __init__, so P_mean is the pickled value; the class is the patched exec
    assert seen == ['EDMLoss'] and loss.P_mean == -1.0
    assert type(loss).__module__.startswith('_imported_module_')
    assert type(loss)(P_mean=2.0).P_mean == 20.0


def test_wrong_version_is_rejected(training):
    meta = read_stream(pickle.dumps(training.EDMLoss()))[0][0]
    meta['version'] = 5
    with pytest.raises(ValueError, match='version 5'):
        persistence._reconstruct_persistent_obj(meta)


def test_constant_is_cached_and_broadcast():
    a = misc.constant(np.float32(0.5), shape=[2, 3], dtype=torch.float64)
    assert a is misc.constant(np.float32(0.5), shape=[2, 3], dtype=torch.float64)
    assert a is not misc.constant(np.float32(0.5), shape=[2, 3], dtype=torch.float32)
    assert a.dtype == torch.float64 and torch.equal(a, torch.full((2, 3), 0.5, dtype=torch.float64))
    b = misc.constant([1, 2, 3])
    assert b.dtype == torch.get_default_dtype() and b.tolist() == [1.0, 2.0, 3.0]


def test_assert_shape():
    misc.assert_shape(torch.zeros(2, 3, 4), [2, None, 4])
    with pytest.raises(AssertionError, match='dimension 1: got 3, expected 5'):
        misc.assert_shape(torch.zeros(2, 3, 4), [2, 5, 4])
    with pytest.raises(AssertionError, match='number of dimensions'):
        misc.assert_shape(torch.zeros(2, 3), [2, 3, 1])


def test_suppress_tracer_warnings_and_profiled_function():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with misc.suppress_tracer_warnings():
            warnings.warn('traced', torch.jit.TracerWarning)
        warnings.warn('kept', UserWarning)
    assert [str(w.message) for w in caught] == ['kept']

    @misc.profiled_function
    def double(x):
        return 2 * x
    assert double.__name__ == 'double' and double(21) == 42
