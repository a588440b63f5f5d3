"""The NVlabs side of benchmarks/throughput.py's same-run comparison, one fresh process per run (like a user's),
started by benchmarks/common/nvlabs_commands.py:

    python -m benchmarks.nvlabs_baseline restated --network PKL --outdir DIR --seeds 0-31 --batch 32 --steps 3
        NVlabs' call pattern restated with edm_bdia parts that match NVlabs bit for bit: seeds split over batches as
        NVlabs splits them, one random stream per seed, the WHOLE batch in one call of the plain network (its own
        arithmetic, no tiles, NCHW fp32), float64 sampler state (edm_sampler), PNGs written in the loop. The pickle
        is read with edm_bdia's safe loader. Used when no NVlabs checkout is given.
    python -m benchmarks.nvlabs_baseline nvlabs PATH --network PKL --outdir DIR --seeds ... --batch ... --steps ...
        NVlabs' own generate.py from the checkout at PATH, on the CPU: its code is run unchanged except for the
        two places that fix it to CUDA (see `patched_generate`).
    python -m benchmarks.nvlabs_baseline nvlabs-pickle PATH STATE KWARGS OUT
        builds NVlabs' `training.networks.EDMPrecond(**KWARGS)` with the checkout's own code, loads the state dict
        STATE (torch.save) into it and pickles dict(ema=net) in eval mode without gradients, as NVlabs' training
        loop does: the network both sides then load.

The checkout is never imported into the benchmark's own process and nothing of it is copied into this project.
"""

import argparse
import functools
import json
import os
import socket
import sys

import torch

CPU = torch.device('cpu')


def run_restated(network, outdir, seeds, batch, steps):
    from edm_bdia.distributed.batching import num_batches, batch_bounds
    from edm_bdia.files.images import save_png, to_hwc_arrays, to_uint8
    from edm_bdia.generation.seeds import parse_seeds
    from edm_bdia import load_network
    from edm_bdia.sample import StackedRandomGenerator, edm_sampler

    net = load_network(network, device=CPU)
    seeds = list(parse_seeds(seeds))
    os.makedirs(outdir, exist_ok=True)
    count = num_batches(len(seeds), batch, 1)
    for index in range(count):
        batch_seeds = seeds[slice(*batch_bounds(len(seeds), count, index))]
        rnd = StackedRandomGenerator(CPU, batch_seeds)
        latents = rnd.randn([len(batch_seeds), net.img_channels, net.img_resolution, net.img_resolution])
        labels = None
        if net.label_dim:
            labels = torch.eye(net.label_dim)[rnd.randint(net.label_dim, size=[len(batch_seeds)])]
        images = edm_sampler(net, latents, labels, randn_like=rnd.randn_like, num_steps=steps)  # one call per step
        for seed, array in zip(batch_seeds, to_hwc_arrays(to_uint8(images))):
            save_png(array, os.path.join(outdir, f'{seed:06d}.png'))


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def work_in_checkout(checkout):
    """Run from the NVlabs checkout as its own scripts do: its folder is the working directory and the place its
    top-level modules (dnnlib, torch_utils, training, generate) are imported from."""
    os.chdir(checkout)
    # The checkout is a folder of scripts, not an installed package: its own scripts find these modules only because
    # Python puts the script's folder first on the path; this child process does the same, and nothing else does.
    sys.path.insert(0, checkout)


def patched_generate():
    """NVlabs' generate module from the checkout, with exactly two changes so that it runs on a CPU-only torch: its
    process-group setup (NCCL and a CUDA device) becomes a one-process gloo group, and the `device` that main()
    defaults to CUDA becomes the CPU. Everything else (loading, batching, random streams, sampler, PNGs) is the
    checkout's code."""
    from torch_utils import distributed

    def init_one_cpu_process():
        os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()), RANK='0', LOCAL_RANK='0',
                          WORLD_SIZE='1')
        torch.distributed.init_process_group(backend='gloo', init_method='env://')

    distributed.init = init_one_cpu_process
    import generate
    generate.main.callback = functools.partial(generate.main.callback, device=CPU)
    return generate


def make_nvlabs_pickle(state, kwargs_file, out):
    import pickle

    import dnnlib
    with open(kwargs_file) as f:
        kwargs = json.load(f)
    net = dnnlib.util.construct_class_by_name(class_name='training.networks.EDMPrecond', **kwargs)
    net.load_state_dict(torch.load(state))
    with open(out, 'wb') as f:
        pickle.dump(dict(ema=net.eval().requires_grad_(False).cpu()), f)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['nvlabs']:
        work_in_checkout(os.path.abspath(argv[1]))
        patched_generate().main(argv[2:], standalone_mode=True)
    elif argv[:1] == ['nvlabs-pickle']:
        work_in_checkout(os.path.abspath(argv[1]))
        make_nvlabs_pickle(*argv[2:5])
    else:
        parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
        parser.add_argument('kind', choices=['restated'])
        parser.add_argument('--network', required=True)
        parser.add_argument('--outdir', required=True)
        parser.add_argument('--seeds', required=True)
        parser.add_argument('--batch', type=int, required=True)
        parser.add_argument('--steps', type=int, required=True)
        args = parser.parse_args(argv)
        run_restated(args.network, args.outdir, args.seeds, args.batch, args.steps)


if __name__ == '__main__':
    main()
