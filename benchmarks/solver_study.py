"""Solver study (third edition): every sampler at exactly equal network evaluations (NFE) on twelve testbeds with
known answers.

Testbeds (benchmarks/study/testbeds.py): a Gaussian (closed-form solution), the built-in `toy-mixture-32x32-cond`
and the same scaled to data std 3 and 0.05, a sharp 100-component mixture in 3x32x32 (per-pixel std 0.01) and the
same with one class holding 91 % of the prior, 500 components of std 0.002 in 1x64x64, data on 3-dimensional
subspaces of 1x16x16, 2-D grids of 25 modes (std 0.02 and 0.005), three 2-D modes of std 0.2, 0.02 and 0.002, and
a small class-conditional EDM network trained here on scikit-learn's 8x8 digits (benchmarks/study/digits.py;
skipped without the `bench` extra).
Methods (benchmarks/study/methods.py): Euler, Heun (EDM), BDIA on the Heun and Euler bases over a gamma grid,
O-BELM, the library's default and its 0.x default, reversible Heun (Kidger et al. 2021), and DPM-Solver++(2M) from
k-diffusion (through edm_bdia.interop; skipped when k-diffusion is not installed) as the non-invertible anchor.
Step counts are chosen per method so that every method spends the same NFE (Heun and BDIA-heun: 2N - 1; Euler,
BDIA-euler, O-BELM and DPM-Solver++(2M): N; reversible Heun: N + 1); the study counts the evaluations and stops
if one differs.
Metrics: RMS and per-sample median error to the reference, max |x|, round trip (sample -> invert -> regenerate),
encoding of real images (distance to the exact ODE latents and their std), cross-condition edits, the 2-D grids'
wrong-mode rate, the digits' pixel Frechet distance to held-out data, stability at EDM's step counts, and the
requirements for the default invertible sampler (benchmarks/study/recommend.py). Writes solver_study_results.md,
solver_study.json and two plots to --out.

    nice -n 10 python -m benchmarks.solver_study            # full study (about an hour on 2 cores)
    python -m benchmarks.solver_study --quick               # smoke test (about a minute), in a temporary folder
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time
from typing import Callable

import torch

from .common.paths import RESULTS_DIR
from .study import methods as study_methods
from .study.report import (edit_table, headline_table, plots, recommendation_section, stability_table,
                           testbed_tables)
from .study.run import run_grid
from .study.testbeds import BUILDERS


@dataclasses.dataclass
class StudyConfig:
    quick: bool
    nfes: list
    stability_nfes: list
    edit_nfe: int
    encode_min_nfe: int
    gammas: list
    samples: dict
    real: dict
    tolerance: float
    log: Callable = print


FULL = dict(nfes=[9, 17, 35, 63, 127], stability_nfes=[35, 79], edit_nfe=35, encode_min_nfe=17,
            gammas=[0.5, 0.9, 1.0],
            samples={'gaussian': 16, 'toy': 16, 'sharp': 16, 'grid': 400, 'digits': 200, 'toy-x6': 16, 'toy-x0.1': 16,
                     'sharp-64': 16, 'low-rank': 32, 'grid-fine': 400, 'widths-2d': 300, 'imbalanced': 32},
            real={'gaussian': 16, 'toy': 16, 'sharp': 16, 'grid': 100, 'digits': 200, 'toy-x6': 16, 'toy-x0.1': 16,
                  'sharp-64': 16, 'low-rank': 32, 'grid-fine': 100, 'widths-2d': 90, 'imbalanced': 32},
            tolerance=1e-10)
QUICK = dict(nfes=[9, 17], stability_nfes=[17], edit_nfe=17, encode_min_nfe=17, gammas=[0.5, 1.0],
             samples={name: 2 for name in FULL['samples']} | {'grid': 16, 'grid-fine': 16, 'widths-2d': 9,
                                                               'digits': 10},
             real={name: 2 for name in FULL['real']} | {'grid': 5, 'grid-fine': 5, 'widths-2d': 3, 'digits': 10},
             tolerance=1e-5)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='two NFEs, two gammas, a few samples (smoke test)')
    parser.add_argument('--out', help='output folder (default: benchmarks/results; --quick: a temporary folder)')
    parser.add_argument('--testbeds', default=','.join(BUILDERS),
                        help='comma-separated subset of ' + ','.join(BUILDERS))
    args = parser.parse_args(argv)
    out = args.out or (tempfile.mkdtemp(prefix='solver_study_') if args.quick else RESULTS_DIR)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and spin-waiting threads stall on a shared machine
    config = StudyConfig(quick=args.quick, **(QUICK if args.quick else FULL))
    start = time.time()

    beds, skipped = [], []
    for name in args.testbeds.split(','):
        bed = BUILDERS[name](config)
        (beds.append(bed) if bed is not None else skipped.append(name))
        config.log(f'testbed {name}: ' + ('skipped (scikit-learn missing: pip install -e ".[bench]")'
                                          if bed is None else f'ready at {time.time() - start:.0f} s'))
    methods = study_methods.all_methods(config.gammas)
    if not any(m.kind == 'anchor' for m in methods):
        config.log('DPM-Solver++(2M) skipped: k-diffusion is not installed')
    records, stability = run_grid(beds, methods, config)
    best, recommendation = recommendation_section(methods, records, stability, config.encode_min_nfe)
    error_png, trip_png = plots(records, beds, config, out)
    seconds = time.time() - start

    report = ['# Solver study: results', '', recommendation, '', headline_table(records, beds, config.nfes), '',
              f'![error versus NFE]({os.path.basename(error_png)})', '',
              f'![round trip versus NFE]({os.path.basename(trip_png)})', '',
              stability_table(stability, beds, methods, config.stability_nfes), '',
              edit_table(records, beds, methods, config.edit_nfe), '', '## Per testbed', '',
              testbed_tables(records, beds, methods, config),
              f'({"quick mode; " if args.quick else ""}{seconds:.0f} s on this machine; skipped testbeds: '
              f'{", ".join(skipped) or "none"}; `python -m benchmarks.solver_study{" --quick" if args.quick else ""}`)']
    with open(os.path.join(out, 'solver_study_results.md'), 'w') as f:
        f.write('\n'.join(report) + '\n')
    with open(os.path.join(out, 'solver_study.json'), 'w') as f:
        json.dump(dict(config={k: v for k, v in dataclasses.asdict(config).items() if k != 'log'},
                       recommended=best, seconds=seconds, records=records, stability=stability), f, indent=1)
    config.log(recommendation)
    config.log(f'done in {seconds:.0f} s; results in {out}')
    return best


if __name__ == '__main__':
    main()
