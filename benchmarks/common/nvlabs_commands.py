"""Starting the NVlabs side of the throughput comparison (`python -m benchmarks.nvlabs_baseline`, one fresh process
per run): its command lines, the pickle built by a checkout's own code, and the check that a folder is a checkout."""

import json
import os
import subprocess

import torch

from .paths import REPO_ROOT, module_command


def restated_command(network, outdir, seeds, batch, steps):
    return module_command('nvlabs_baseline', 'restated', '--network', network, '--outdir', outdir, '--seeds', seeds,
                          '--batch', batch, '--steps', steps)


def nvlabs_command(checkout, network, outdir, seeds, batch, steps):
    return module_command('nvlabs_baseline', 'nvlabs', checkout, f'--network={network}', f'--outdir={outdir}',
                          f'--seeds={seeds}', f'--batch={batch}', f'--steps={steps}')


def write_nvlabs_pickle(checkout, net, kwargs, out, workdir):
    """Pickle `net`'s weights as NVlabs' own EDMPrecond(**kwargs) built by the checkout's code (a subprocess)."""
    state, kwargs_file = os.path.join(workdir, 'state.pt'), os.path.join(workdir, 'kwargs.json')
    torch.save(net.state_dict(), state)
    with open(kwargs_file, 'w') as f:
        json.dump(kwargs, f)
    subprocess.run(module_command('nvlabs_baseline', 'nvlabs-pickle', checkout, state, kwargs_file, out), check=True,
                   cwd=REPO_ROOT)


def check_checkout(path):
    """ValueError unless `path` looks like an NVlabs/edm checkout."""
    missing = [name for name in ('generate.py', 'dnnlib', os.path.join('torch_utils', 'distributed.py'),
                                 os.path.join('training', 'networks.py'))
               if not os.path.exists(os.path.join(path, name))]
    if missing:
        raise ValueError(f'--nvlabs {path}: not an NVlabs/edm checkout (missing {", ".join(missing)})')
