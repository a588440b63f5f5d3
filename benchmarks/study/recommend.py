"""The default invertible sampler: its requirements (issue 17) checked on every testbed and NFE of the study.

Errors are compared on the per-sample median (`median`): on mode-seeking testbeds one sample that a solver sends to
another mode than the reference solve dominates the RMS of a few samples; the tables show the RMS beside it.
"""

import math

BLOWUP_FACTOR = 3.0  # max |x| above this multiple of the reference's (edits: the real images') max |x|: a blow-up
ROUND_TRIP_LIMIT = 1e-9  # relative, float64
NOISE_STD_TOLERANCE = 0.05  # encoded latents' std within 5 % of the exact ODE latents' std
HEUN_FACTOR = 1.0  # error at most Heun's at equal NFE (both counted no lower than the final-step floor)
OBELM_FACTOR = 2.0  # and at most twice plain O-BELM's
HEUN = 'Heun (EDM)'


def image_growth(r):
    """max |x| of the samples over the reference's max |x|."""
    return r['max_abs'] / r['reference_max_abs']


def growth(r):
    """image_growth, and for edits max |x| over the real images' max |x|: the larger."""
    return max(image_growth(r), r['edit_max_abs'] / r['real_max_abs']) if 'edit_max_abs' in r else image_growth(r)


def error_ratio(r, other, value='median'):
    """Error over another method's at the same testbed and NFE, each counted no lower than the testbed's final-step
    floor (what EDM's last step x = D(x; sigma_min) alone costs against the exact x(0): below it, differences are
    luck)."""
    floor = r['final_step_floor']
    return max(r[value], floor) / max(other[value], floor)


def latent_std_deviation(r):
    """|std of the encoded latents / std of the exact ODE latents - 1|."""
    return abs(r['encode_std'] / r['reference_latent_std'] - 1)


def blew_up(r):
    return not growth(r) <= BLOWUP_FACTOR


def check(method, records, stability, encode_min_nfe, obelm):
    """{requirement: (passed, worst value, where)} for one method over all its records; latents are judged from
    `encode_min_nfe` on (at fewer evaluations no solver, exact or approximate, reaches noise-like latents)."""
    mine = [r for r in records if r['method'] == method]
    encoded = [r for r in mine if 'encode_std' in r and r['nfe'] >= encode_min_nfe]
    index = {(r['testbed'], r['method'], r['nfe']): r for r in records}
    stab = [r for r in stability if r['method'] == method]

    def against(name):
        return [r for r in mine if (r['testbed'], name, r['nfe']) in index]

    def ratio(name):
        return lambda r: error_ratio(r, index[(r['testbed'], name, r['nfe'])])

    def worst(rows, value, limit):
        rows = [r for r in rows if value(r) is not None]
        if not rows:
            return (False, float('nan'), 'not measured')
        row = max(rows, key=lambda r: value(r) if math.isfinite(value(r)) else float('inf'))
        return (all(value(r) <= limit for r in rows), value(row), f"{row['testbed']} NFE {row['nfe']}")

    return {
        'never blows up (max |x| / reference max |x|, edits included)': worst(mine + stab, growth, BLOWUP_FACTOR),
        f'round trip <= {ROUND_TRIP_LIMIT:g}': worst(mine, lambda r: r.get('round_trip'), ROUND_TRIP_LIMIT),
        f'latents from NFE {encode_min_nfe} (|std / exact std - 1| <= {NOISE_STD_TOLERANCE:g})':
            worst(encoded, latent_std_deviation, NOISE_STD_TOLERANCE),
        f'median error <= {HEUN_FACTOR:g} x Heun\'s': worst(against(HEUN), ratio(HEUN), HEUN_FACTOR),
        f'median error <= {OBELM_FACTOR:g} x O-BELM\'s': worst(against(obelm), ratio(obelm), OBELM_FACTOR),
    }


def mean_error_ratio(name, records, value):
    """The geometric mean over testbeds and NFEs of `name`'s error over Heun's (`value`: 'rms' or 'median')."""
    index = {(r['testbed'], r['method'], r['nfe']): r for r in records}
    ratios = [math.log(error_ratio(r, index[(r['testbed'], HEUN, r['nfe'])], value)) for r in records
              if r['method'] == name and (r['testbed'], HEUN, r['nfe']) in index]
    return math.exp(sum(ratios) / len(ratios))


def recommend(methods, records, stability, encode_min_nfe, obelm):
    """(the recommended method name or None, {method: check table}, {method: geometric-mean median error / Heun's})
    over the exactly invertible methods.

    Among the methods that pass every requirement, the one with the smallest geometric-mean median error relative to
    Heun wins; with none passing, the result is None and the tables show who failed what.
    """
    tables = {m.name: check(m.name, records, stability, encode_min_nfe, obelm) for m in methods if m.exact_inverse}
    passing = [name for name, table in tables.items() if all(ok for ok, _, _ in table.values())]
    ratios = {name: mean_error_ratio(name, records, 'median') for name in tables}
    best = min(passing, key=ratios.get) if passing else None
    return best, tables, ratios
