"""A last, partial tile is called at a smaller size only where a probe on noise showed that size to give the tile's
bits: the call sizes are observed on stand-in networks whose arithmetic depends on the call size in a known way,
and the outputs are compared with the padded tile's."""

import pytest
import torch

from edm_bdia.speed.tiling import EquivalentCallSizes, call_in_tiles
from test_acceleration import accelerated, inputs

TILE = 8


def size_dependent_call(matching_sizes, calls):
    """call(x, sigma, class_labels, model_kwargs): x * sigma, one ulp-scale factor off at call sizes that are not
    in `matching_sizes` (as a kernel with another code path would be); records each call's size in `calls`."""
    def call(x, sigma, class_labels, model_kwargs):
        calls.append(x.shape[0])
        exact = x.shape[0] in matching_sizes
        return x * sigma.reshape(-1, 1, 1, 1) * (1 if exact else 1 + 2 ** -20)
    return call


def run(rows, matching_sizes, sizes=None):
    calls = []
    sizes = sizes or EquivalentCallSizes(TILE)
    x = torch.randn(rows, 3, 4, 4, dtype=torch.float64)
    sigma = torch.linspace(0.5, 2, rows, dtype=torch.float64)
    out = call_in_tiles(size_dependent_call(matching_sizes, calls), TILE, x, sigma, None, {}, sizes)
    return out, calls, x * sigma.reshape(-1, 1, 1, 1), sizes


@pytest.mark.parametrize('rows, matching, expected_calls', [
    (3, {4, 8}, [8, 4, 4]),  # probe: tile and 4 on noise; then the 3 rows padded to 4
    (1, {4, 8}, [8, 1, 2, 4, 4]),  # 1 and 2 disagree with the tile, 4 agrees
    (2, {2, 4, 8}, [8, 2, 2]),
    (3, {8}, [8, 4, 8]),  # nothing smaller agrees: the padded tile, as without the probe
    (5, {1, 2, 4, 8}, [8]),  # no power of two between 5 and the tile: no probe
    (13, {4, 8}, [8, 8]),  # a full tile, then the rest of 5 padded to the tile
    (11, {4, 8}, [8, 8, 4, 4]),  # a full tile, the probe, then the rest of 3 padded to 4
    (16, {8}, [8, 8]),  # whole tiles: nothing to probe
])
def test_a_last_tile_is_called_at_the_smallest_probed_equivalent_size(rows, matching, expected_calls):
    out, calls, exact, _ = run(rows, matching)
    assert calls == expected_calls
    assert torch.equal(out, exact)  # the tile's bits: never a call of a size that disagreed


def test_probe_results_are_remembered_per_size():
    _, _, _, sizes = run(1, {4, 8})
    assert sizes.known == {1: False, 2: False, 4: True}
    out, calls, exact, _ = run(3, {4, 8}, sizes)
    assert calls == [4] and torch.equal(out, exact)  # no second probe


def test_call_size_walks_powers_of_two_up_to_the_tile():
    probed = []
    sizes = EquivalentCallSizes(16)
    assert sizes.call_size(5, lambda size: probed.append(size) or size == 16) == 16
    assert probed == [8]
    assert sizes.call_size(3, lambda size: probed.append(size) or False) == 16 and probed == [8, 4]


@pytest.mark.parametrize('mode', ['reference', 'fast', 'bf16'])
def test_partial_tiles_of_the_real_networks_give_the_padded_tiles_values(mode):
    """Whatever the probe finds on this CPU, every sample's output equals its output inside a full tile."""
    acc = accelerated('ddpmpp-cond', mode, tile=TILE)
    x, sigma, labels = inputs(acc, TILE)
    whole = acc(x, sigma, labels)
    for rows in (1, 3, 4, 7):
        assert torch.equal(acc(x[:rows], sigma, labels[:rows]), whole[:rows]), rows
    assert set(acc._equivalent_sizes.known) <= {1, 2, 4}
