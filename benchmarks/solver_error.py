"""Solver study: error against the exact solution versus network evaluations, on the built-in analytic models.

- Gaussian: data ~ N(mu, diag(s^2)) with the per-pixel mean and std of the built-in mixture; the PF-ODE has a
  closed-form solution (`GaussianDenoiser.exact_solution`).
- Mixture: the built-in class-conditional model `toy-mixture-32x32-cond`; reference = scipy `solve_ivp` (DOP853,
  rtol = atol = 1e-10, float64) of dx/dt = (x - D(x; t)) / t from t_0 = 80 down to t = 1e-9.

Every method uses EDM's schedule (rho = 7, sigma in [0.002, 80]); the error is the RMS over all pixels of the final
images (t = 0) in [-1, 1] units. Also measured: the round-trip error of BDIA inversion versus gamma and N.
Writes results/solver_error.md and results/solver_error.png.

    python benchmarks/solver_error.py            # about 45 s on 2 idle CPU cores
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loglog_plot import DASHED, save_panels  # noqa: E402

from edm_bdia.sample import bdia_invert, bdia_sampler, edm_sampler, karras_sigmas  # noqa: E402
from edm_bdia.analytic import GaussianDenoiser, toy_mixture_32x32_cond  # noqa: E402

STEPS = [4, 8, 16, 32, 64, 128]
GAMMAS = [1.0, 0.9, 0.5, 0.2]


def methods():
    """(label, style, sampler(net, latents, labels, num_steps), NFE(N))."""
    out = [('Euler', None, lambda net, z, c, n: bdia_sampler(net, z, c, num_steps=n, gamma=0, base='euler'),
            lambda n: n),
           ('Heun (EDM)', None, lambda net, z, c, n: edm_sampler(net, z, c, num_steps=n), lambda n: 2 * n - 1)]
    for base, style, nfe in (('heun', None, lambda n: 2 * n - 1), ('euler', DASHED, lambda n: n)):
        for g in GAMMAS:
            out.append((f'BDIA-{base} g={g:g}', style,
                        lambda net, z, c, n, g=g, base=base: bdia_sampler(net, z, c, num_steps=n, gamma=g, base=base),
                        nfe))
    out.append(('O-BELM (euler, g=obelm)', None,
                lambda net, z, c, n: bdia_sampler(net, z, c, num_steps=n, gamma='obelm', base='euler'), lambda n: n))
    return out


def reference_solution(net, latents, labels, t_start, t_end=1e-9):
    """High-accuracy PF-ODE solution x(t_end) from x(t_start) = latents * t_start, sample by sample."""
    out = []
    for z, c in zip(latents, labels):
        def rhs(t, x, c=c):
            x = torch.as_tensor(x).reshape(1, *z.shape)
            return ((x - net(x, t, c[None])) / t).reshape(-1).numpy()
        sol = solve_ivp(rhs, (t_start, t_end), (z.double() * t_start).reshape(-1).numpy(), method='DOP853',
                        rtol=1e-10, atol=1e-10)
        out.append(torch.as_tensor(sol.y[:, -1]).reshape(z.shape))
    return torch.stack(out)


def error_curves(net, latents, labels, reference):
    curves = []
    for label, style, sampler, nfe in methods():
        errors = [((sampler(net, latents, labels, n) - reference) ** 2).mean().sqrt().item() for n in STEPS]
        curves.append((label, [nfe(n) for n in STEPS], errors, style))
    return curves


def round_trip_errors(net, latents, labels, steps=(10, 18, 40)):
    """Max relative error of the latents recovered by bdia_invert (BDIA-Heun), per gamma and N."""
    rows = []
    for g in GAMMAS:
        row = []
        for n in steps:
            pair = bdia_sampler(net, latents, labels, num_steps=n, gamma=g, return_pair=True)
            x0, _ = bdia_invert(net, *pair, labels, num_steps=n, gamma=g)
            recovered = x0 / karras_sigmas(n)[0]
            row.append(((recovered - latents).abs().max() / latents.abs().max()).item())
        rows.append((g, row))
    return steps, rows


def markdown_table(title, curves):
    lines = [f'**{title}**: RMS error of the final images (t = 0), by steps N (NFE in parentheses)', '',
             '| method | ' + ' | '.join(f'N={n}' for n in STEPS) + ' |', '|---|' + '---|' * len(STEPS)]
    for label, nfes, errors, _ in curves:
        lines.append(f'| {label} | ' + ' | '.join(f'{e:.2e} ({k})' for e, k in zip(errors, nfes)) + ' |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results'))
    parser.add_argument('--samples', type=int, default=8, help='images per model')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    start = time.time()

    mixture = toy_mixture_32x32_cond()
    mean, cov = mixture.data_moments()
    gaussian = GaussianDenoiser(mean.reshape(3, 32, 32), cov.diagonal().sqrt().reshape(3, 32, 32))
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(args.samples, 3, 32, 32, generator=gen, dtype=torch.float64)
    labels = torch.eye(10, dtype=torch.float64)[torch.arange(args.samples) % 10]
    t0 = karras_sigmas(2)[0]

    gaussian_curves = error_curves(gaussian, latents, None, gaussian.exact_solution(latents, t0))
    mixture_reference = reference_solution(mixture, latents, labels, t0.item())
    mixture_curves = error_curves(mixture, latents, labels, mixture_reference)
    steps, trips = round_trip_errors(mixture, latents, labels)

    save_panels(os.path.join(args.out, 'solver_error.png'),
                [('Gaussian (exact solution)', gaussian_curves), ('Mixture (DOP853 reference)', mixture_curves)],
                xlabel='network evaluations (NFE)', ylabel='RMS error')
    report = [markdown_table('Gaussian', gaussian_curves), '', markdown_table('Mixture', mixture_curves), '',
              '**Round trip**: max relative error of the latents recovered by `bdia_invert` (BDIA-Heun, mixture)', '',
              '| gamma | ' + ' | '.join(f'N={n}' for n in steps) + ' |', '|---|' + '---|' * len(steps)]
    report += [f'| {g:g} | ' + ' | '.join(f'{e:.1e}' for e in row) + ' |' for g, row in trips]
    report += ['', f'({args.samples} images per model; {time.time() - start:.0f} s on this machine; '
               f'`python benchmarks/solver_error.py`)']
    with open(os.path.join(args.out, 'solver_error.md'), 'w') as f:
        f.write('\n'.join(report) + '\n')
    print('\n'.join(report))


if __name__ == '__main__':
    main()
