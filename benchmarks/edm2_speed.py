"""EDM2 networks on this machine: what each speed mode buys per network call against NVlabs' call pattern.

For each configuration (full size, random weights with non-zero gains, edm_bdia.networks.edm2_published), in one run
with the variants round-robin (so load drift hits them alike):
* NVlabs' pattern: the whole batch in one fp32 call that normalises every weight again (EDM2's own code on the
  CPU, where its fp16 is off);
* `--speed reference`: the same call with the weight normalisation frozen (the same bits, checked);
* `fast` (fp32, channels-last, fixed tiles) and `bf16` (16-bit UNet, where the CPU computes bf16 natively; the
  refusal is checked elsewhere), with the largest |dD| against NVlabs' output.

    python -m benchmarks.edm2_speed                  # img512-xs and img64-s at batch 8, ~5 minutes
    python -m benchmarks.edm2_speed --quick          # img512-xs at batch 8, 2 rounds

Results go to results/edm2_speed-<cpu kind>.md (one file per kind of CPU).
"""

import argparse
import copy
import datetime
import os
import sys

import torch

from edm_bdia.networks.edm2_published import build_edm2_published
from edm_bdia.speed import accelerate, cpu_info

from .common.markdown import table
from .common.paths import RESULTS_DIR
from .common.timing import describe_machine, load_average, round_robin

CONFIGURATIONS = {'edm2-img512-xs': 8, 'edm2-img64-s': 8}  # name -> batch (one CPU tile)
SIGMA = 2.5  # a mid-trajectory noise level; the cost of a call does not depend on it


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def inputs(net, batch):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, net.img_channels, net.img_resolution, net.img_resolution, generator=generator) * SIGMA
    labels = torch.eye(net.label_dim)[torch.randint(net.label_dim, (batch,), generator=generator)]
    return x, torch.full((batch,), SIGMA), labels


def variants(name, batch):
    """{variant: callable returning D} for one configuration, each on its own copy of the same network."""
    plain = build_edm2_published(name)
    x, sigma, labels = inputs(plain, batch)
    modes = ['reference', 'fast'] + (['bf16'] if cpu_info().native_bf16 else [])
    accelerated = {mode: accelerate(copy.deepcopy(plain), mode) for mode in modes}

    def nvlabs():
        with torch.no_grad():
            return plain(x, sigma, labels)
    calls = {'NVlabs pattern (fp32, normalised every call)': nvlabs}
    for mode, net in accelerated.items():
        calls[f'{mode} (tile {net.plan.tile or batch})'] = lambda net=net: net(x, sigma, labels)
    return calls


def measure(name, batch, rounds):
    log(f'{name}, batch {batch}:')
    calls = variants(name, batch)
    timings = round_robin(calls, rounds, log=log)
    baseline_name = next(iter(calls))
    baseline = timings[baseline_name]
    rows = []
    for variant, timing in timings.items():
        deviation = (timing['result'].float() - baseline['result'].float()).abs().max().item()
        rows.append([variant, f'{timing["median"] / batch * 1000:.0f}', f'{timing["min"] / batch * 1000:.0f}',
                     f'{baseline["median"] / timing["median"]:.2f}x',
                     f'{deviation:.1e}' if deviation else '0 (same bits)', f'{100 * timing["foreign"]:.0f}%'])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='img512-xs at batch 8, 2 rounds')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--out', default=None, help='results file (default: results/edm2_speed-<cpu kind>.md)')
    args = parser.parse_args()
    configurations = {'edm2-img512-xs': 8} if args.quick else CONFIGURATIONS
    rounds = 2 if args.quick else args.rounds
    info = cpu_info()
    started = datetime.datetime.now(datetime.timezone.utc)
    lines = [f'# EDM2 network calls by speed mode ({info.kind})', '',
             f'{started:%Y-%m-%d %H:%M} UTC; {describe_machine(torch.device("cpu"))}; ISA flags: '
             f'{" ".join(sorted(f for f in info.usable_flags if f.startswith(("avx", "amx", "fma"))))}; load average at start {load_average()}; {rounds} rounds, '
             'variants round-robin; ms per image-evaluation (median and best of the rounds); speed-up against '
             "NVlabs' pattern; max |dD| against NVlabs' output (|D| ~ 1); the largest share of the CPUs other "
             'processes took during a counted repeat.', '']
    for name, batch in configurations.items():
        lines += [f'## {name}, batch {batch}', '',
                  table(['variant', 'ms/img median', 'ms/img best', 'speed-up', 'max |dD|', 'foreign load'],
                         measure(name, batch, rounds)), '']
    out = args.out or os.path.join(RESULTS_DIR, f'edm2_speed-{info.kind}.md')
    with open(out, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines))
    log(f'wrote {out}')


if __name__ == '__main__':
    main()
