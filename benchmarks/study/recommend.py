"""The default invertible sampler: the four requirements checked on every testbed and NFE of the study."""

import math

BLOWUP_FACTOR = 3.0  # max |x| above this multiple of the reference's (edits: the real images') max |x|: a blow-up
ROUND_TRIP_LIMIT = 1e-9  # relative, float64
NOISE_STD_TOLERANCE = 0.1  # encoded latents' std within 10 % of the exact ODE latents' std
HEUN_FACTOR = 2.0  # error at most twice Heun's at equal NFE (both counted no lower than the final-step floor)


def image_growth(r):
    """max |x| of the samples over the reference's max |x|."""
    return r['max_abs'] / r['reference_max_abs']


def growth(r):
    """image_growth, and for edits max |x| over the real images' max |x|: the larger."""
    return max(image_growth(r), r['edit_max_abs'] / r['real_max_abs']) if 'edit_max_abs' in r else image_growth(r)


def error_ratio(r, heun_rms):
    """Error over Heun's at the same testbed and NFE, each counted no lower than the testbed's final-step floor
    (what EDM's last step x = D(x; sigma_min) alone costs against the exact x(0): below it, differences are luck)."""
    floor = r['final_step_floor']
    return max(r['rms'], floor) / max(heun_rms, floor)


def latent_std_deviation(r):
    """|std of the encoded latents / std of the exact ODE latents - 1|."""
    return abs(r['encode_std'] / r['reference_latent_std'] - 1)


def blew_up(r):
    return not growth(r) <= BLOWUP_FACTOR


def check(method, records, stability, encode_min_nfe):
    """{requirement: (passed, worst value, where)} for one method over all its records; latents are judged from
    `encode_min_nfe` on (at fewer evaluations no solver, exact or approximate, reaches noise-like latents)."""
    mine = [r for r in records if r['method'] == method]
    encoded = [r for r in mine if 'encode_std' in r and r['nfe'] >= encode_min_nfe]
    heun = {(r['testbed'], r['nfe']): r['rms'] for r in records if r['method'] == 'Heun (EDM)'}
    stab = [r for r in stability if r['method'] == method]

    def worst(rows, value, bad):
        rows = [r for r in rows if value(r) is not None]
        if not rows:
            return (False, float('nan'), 'not measured')
        row = max(rows, key=lambda r: value(r) if math.isfinite(value(r)) else float('inf'))
        return (not any(bad(r) for r in rows), value(row), f"{row['testbed']} NFE {row['nfe']}")

    return {
        'never blows up (max |x| / reference max |x|, edits included)': worst(mine + stab, growth, blew_up),
        f'round trip <= {ROUND_TRIP_LIMIT:g}':
            worst(mine, lambda r: r.get('round_trip'), lambda r: not r['round_trip'] <= ROUND_TRIP_LIMIT),
        f'noise-like latents from NFE {encode_min_nfe} (|std / exact std - 1| <= {NOISE_STD_TOLERANCE:g})':
            worst(encoded, latent_std_deviation, lambda r: not latent_std_deviation(r) <= NOISE_STD_TOLERANCE),
        f'error <= {HEUN_FACTOR:g} x Heun at equal NFE (error / Heun error)':
            worst([r for r in mine if (r['testbed'], r['nfe']) in heun],
                  lambda r: error_ratio(r, heun[(r['testbed'], r['nfe'])]),
                  lambda r: not error_ratio(r, heun[(r['testbed'], r['nfe'])]) <= HEUN_FACTOR),
    }


def recommend(methods, records, stability, encode_min_nfe):
    """(the recommended method name or None, {method: check table}) over the exactly invertible methods.

    Among the methods that pass all four requirements, the one with the smallest geometric-mean error relative to
    Heun wins; with none passing, the result is None and the tables show who failed what.
    """
    heun = {(r['testbed'], r['nfe']): r['rms'] for r in records if r['method'] == 'Heun (EDM)'}
    tables = {m.name: check(m.name, records, stability, encode_min_nfe) for m in methods if m.exact_inverse}
    passing = [name for name, table in tables.items() if all(ok for ok, _, _ in table.values())]

    def mean_log_ratio(name):
        ratios = [math.log(error_ratio(r, heun[(r['testbed'], r['nfe'])])) for r in records
                  if r['method'] == name and (r['testbed'], r['nfe']) in heun]
        return sum(ratios) / len(ratios)
    best = min(passing, key=mean_log_ratio) if passing else None
    return best, tables, {name: math.exp(mean_log_ratio(name)) for name in tables}
