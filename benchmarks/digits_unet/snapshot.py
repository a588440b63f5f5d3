"""The NVlabs snapshot layout: a pickled dict(ema=network, loss_fn=..., augment_pipe=..., dataset_kwargs=...) whose
network classes pickle themselves through torch_utils.persistence (docs/checkpoints.md, 'Pickle format version 6'),
so that edm_bdia's safe loader and NVlabs-style trusted loading both read it.
"""

import copy
import io
import pickle

from edm_bdia.networks.own_torch_utils import aliased_torch_utils


def snapshot_bytes(ema, dataset_kwargs):
    """The pickle of dict(ema=a CPU float32 eval copy of `ema`, loss_fn=None, augment_pipe=None, dataset_kwargs).

    loss_fn is None: NVlabs stores its EDMLoss object there, which edm_bdia has no class for; the loss settings are
    in the training record instead."""
    net = copy.deepcopy(ema).cpu().float().eval().requires_grad_(False)
    data = dict(ema=net, loss_fn=None, augment_pipe=None, dataset_kwargs=dict(dataset_kwargs))
    buffer = io.BytesIO()
    with aliased_torch_utils():  # pickle names torch_utils.persistence: it must be ours while pickling
        pickle.dump(data, buffer, protocol=4)
    return buffer.getvalue()
