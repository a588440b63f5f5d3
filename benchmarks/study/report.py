"""Markdown tables and Pillow plots of the study's records."""

import math
import os

from ..common.loglog_plot import DASHED, save_panels
from .methods import DEFAULT, OBELM
from .recommend import BLOWUP_FACTOR, HEUN, error_ratio, image_growth, mean_error_ratio, recommend

PLOTTED = ['Euler', HEUN, 'DPM-Solver++(2M)', 'BDIA-heun g=1', 'BDIA-heun g=0.9', 'BDIA-heun g=0.5',
           'BDIA-euler g=0.9', 'BDIA-euler g=0.5', OBELM, 'the 0.x default (g=obelm-floor)', DEFAULT,
           'Reversible Heun']


def _fmt(value, spec='.1e'):
    if value is None:
        return '—'
    if isinstance(value, float) and not math.isfinite(value):
        return 'inf'
    return format(value, spec)


def _blowup_mark(r):
    return ' **blow-up**' if not image_growth(r) <= BLOWUP_FACTOR else ''


def _lookup(records):
    return {(r['testbed'], r['method'], r['nfe']): r for r in records}


def method_table(records, bed, methods, nfes, cell, caption):
    """Methods x NFE for one testbed; `cell(record)` gives the text, '—' where nothing was measured."""
    index = _lookup(records)
    lines = [caption, '', '| method | ' + ' | '.join(f'NFE {n}' for n in nfes) + ' |', '|---|' + '---|' * len(nfes)]
    for m in methods:
        cells = [cell(index[(bed, m, n)]) if (bed, m, n) in index else '—' for n in nfes]
        if any(c != '—' for c in cells):
            lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _sci(value):
    return _fmt(value, '.1e')


def _max_abs_cell(r):
    return _fmt(r['max_abs'], '.2f') + _blowup_mark(r)


def _encoding_cell(r):
    return f"{_fmt(r['encode_rms'], '.3f')} / {_fmt(r['encode_std'], '.3f')}" if 'encode_rms' in r else '—'


def testbed_tables(records, beds, methods, config):
    names = [m.name for m in methods]
    out = []
    for bed in beds:
        mine = [r for r in records if r['testbed'] == bed.name]
        reference = 'closed form' if bed.reference_nfe == 0 else f'DOP853 ({bed.reference_nfe} evaluations)'
        reference_max = max(r['reference_max_abs'] for r in mine)
        latent_std = next((r['reference_latent_std'] for r in mine if 'reference_latent_std' in r), None)

        def table(cell, caption):
            return [method_table(records, bed.name, names, config.nfes, cell, caption), '']
        if bed.final_step_floor is None:
            reference += ' to sigma_min, then x = D(x; sigma_min) (the network is undefined below sigma_min)'
        else:
            reference += (f' to t = 0; EDM\'s final step x = D(x; sigma_min) alone lands {bed.final_step_floor:.1e} '
                          '(RMS) from it, the floor below which errors count as equal')
        out += [f'### {bed.title}', '',
                f'{bed.notes}. {len(bed.latents)} samples, {len(bed.real)} real images; reference: {reference}.', '']
        out += table(lambda r: f"{_sci(r['rms'])} / {_sci(r['median'])}",
                     '**error** of the images against the reference at equal NFE: RMS / per-sample median')
        out += table(_max_abs_cell, f'**max |x|** of the samples (reference: {_fmt(reference_max, ".2f")})')
        if bed.modes is not None:
            out += table(lambda r: f"{100 * r['wrong_mode']:.1f} %",
                         '**wrong-mode rate**: samples ending in another mode than the reference solve')
        if bed.held_out is not None:
            out += table(lambda r: f"{r['fd_held_out']:.2f} / {100 * r['class_hit']:.0f} %",
                         '**pixel Fréchet distance to the held-out digits / classifier agrees with the requested '
                         'class**')
        out += table(lambda r: _sci(r.get('round_trip')),
                     '**round trip**: sample -> invert -> regenerate, max |error| / max |x| (Euler and Heun: '
                     'approximate inversion, the solver run backwards)')
        out += table(_encoding_cell, '**encoding real images**: RMS distance of the latents to the exact ODE '
                     f'latents / their std (exact latents: std {_fmt(latent_std, ".3f")})')
    return '\n'.join(out)


def edit_table(records, beds, methods, nfe):
    index = _lookup(records)
    edit_beds = [b for b in beds if b.real_classes is not None]
    lines = [f'**Cross-condition edits at NFE {nfe}**: encode a class-A real image under A, regenerate under class '
             'B = A + 1; max |x| of the edits (real images: in brackets) / share landing in class B (exact class '
             'posterior; digits: the classifier)', '',
             '| method | ' + ' | '.join(f'{b.name} (real {_fmt(b.real.abs().max().item(), ".2f")})' for b in edit_beds)
             + ' |', '|---|' + '---|' * len(edit_beds)]
    for m in methods:
        cells = []
        for b in edit_beds:
            r = index.get((b.name, m.name, nfe))
            cells.append(f"{_fmt(r['edit_max_abs'], '.2f')} / {100 * r['edit_hit']:.0f} %"
                         if r and 'edit_hit' in r else '—')
        if any(c != '—' for c in cells):
            lines.append(f'| {m.name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def stability_table(stability, beds, methods, nfes):
    index = _lookup(stability)
    columns = [(b, n) for b in beds for n in nfes]
    lines = ['**Stability at EDM\'s step counts** (Heun N = 18 and 40 are 35 and 79 NFE): max |x| of the samples '
             '(2-D grid: and the wrong-mode rate)', '',
             '| method | ' + ' | '.join(f'{b.name} NFE {n}' for b, n in columns) + ' |',
             '|---|' + '---|' * len(columns)]
    for m in methods:
        cells = []
        for b, n in columns:
            r = index.get((b.name, m.name, n))
            if r is None:
                cells.append('—')
                continue
            text = _fmt(r['max_abs'], '.2f') + _blowup_mark(r)
            if 'wrong_mode' in r:
                text += f" / {100 * r['wrong_mode']:.1f} %"
            cells.append(text)
        lines.append(f'| {m.name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def recommendation_section(methods, records, stability, encode_min_nfe):
    best, tables, mean_ratio = recommend(methods, records, stability, encode_min_nfe, OBELM)
    requirements = list(next(iter(tables.values())))
    lines = ['**Requirements for the default invertible sampler** (worst case over every testbed and NFE; where)', '',
             '| method | ' + ' | '.join(requirements) + ' | geometric-mean median error / Heun |',
             '|---|' + '---|' * (len(requirements) + 1)]
    for name, table in tables.items():
        cells = [f"{'pass' if ok else '**fail**'} {_fmt(value, '.2g')} ({where})"
                 for ok, value, where in table.values()]
        lines.append(f'| {name} | ' + ' | '.join(cells) + f' | {mean_ratio[name]:.2f} |')
    verdict = f'**Meets every requirement: {best}**' if best else '**No invertible method meets every requirement.**'
    lines += ['', verdict]
    return best, '\n'.join(lines)


def headline_table(records, beds, nfes):
    """Per testbed and NFE: the default's median error over Heun's and over O-BELM's, and its latents' std over the
    exact latents' (the three numbers the default is judged by)."""
    index = _lookup(records)
    lines = ['**The default at a glance**: median error / Heun\'s | median error / O-BELM\'s | latent std / exact '
             '(errors below the final-step floor count as equal)', '',
             '| testbed | ' + ' | '.join(f'NFE {n}' for n in nfes) + ' |', '|---|' + '---|' * len(nfes)]
    for bed in beds:
        cells = []
        for n in nfes:
            mine, heun, obelm = (index.get((bed.name, name, n)) for name in (DEFAULT, HEUN, OBELM))
            if mine is None or heun is None or obelm is None:
                cells.append('—')
                continue
            latents = f"{mine['encode_std'] / mine['reference_latent_std']:.2f}" if 'encode_std' in mine else '—'
            cells.append(f'{error_ratio(mine, heun):.2f} \\| {error_ratio(mine, obelm):.2f} \\| {latents}')
        lines.append(f'| {bed.name} | ' + ' | '.join(cells) + ' |')
    geometric = {value: mean_error_ratio(DEFAULT, records, value) for value in ('median', 'rms')}
    lines += ['', f"Geometric mean over all cells of the default's error / Heun's: {geometric['median']:.2f} "
                  f"(per-sample medians), {geometric['rms']:.2f} (RMS)."]
    return '\n'.join(lines)


def plots(records, beds, config, out):
    names = [n for n in PLOTTED if any(r['method'] == n for r in records)]

    def panels(value):
        result = []
        for bed in beds:
            series = []
            for name in names:
                rows = sorted((r for r in records if r['testbed'] == bed.name and r['method'] == name),
                              key=lambda r: r['nfe'])
                series.append((name, [r['nfe'] for r in rows], [value(r) for r in rows],
                               DASHED if 'euler' in name.lower() and name != 'Euler' else None))
            result.append((bed.title, series))
        return result
    error_path = os.path.join(out, 'solver_study_error.png')
    save_panels(error_path, panels(lambda r: r['rms']), xlabel='network evaluations (NFE)', ylabel='RMS error',
                columns=3)
    trip_path = os.path.join(out, 'solver_study_round_trip.png')
    save_panels(trip_path, panels(lambda r: r.get('round_trip')), xlabel='network evaluations (NFE)',
                ylabel='round-trip error', columns=3)
    return error_path, trip_path
