"""Running one method on one testbed at one NFE, and the whole grid of them."""

import time
import warnings

import torch

from edm_bdia.sample import karras_sigmas

from ..common.metered_net import MeteredNet
from .metrics import max_abs, median_rms, pixel_frechet_distance, relative_max_error, rms


def _sample_counted(method, net, latents, labels, num_steps, nfe):
    counter = MeteredNet(net)
    images, state = method.sample(counter, latents, labels, num_steps)
    if counter.calls != nfe:
        raise RuntimeError(f'{method.name} made {counter.calls} network evaluations for N = {num_steps}, '
                           f'expected NFE = {nfe}')
    return images, state


def measure(bed, method, nfe, inverse=True, edit=False):
    """One record: the metrics of `method` on testbed `bed` at `nfe` network evaluations per image (the samplers'
    warnings about unstable settings are silenced: the study runs such settings on purpose, to measure them)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        return _measure(bed, method, nfe, inverse, edit)


def _measure(bed, method, nfe, inverse, edit):
    n = method.steps(nfe)
    if method.nfe(n) != nfe:
        return None  # this NFE is not reachable by the method
    net = bed.net
    start_time = time.time()
    with torch.no_grad():
        images, state = _sample_counted(method, net, bed.latents, bed.labels, n, nfe)
        record = dict(testbed=bed.name, method=method.name, kind=method.kind, nfe=nfe, steps=n,
                      rms=rms(images, bed.reference), median=median_rms(images, bed.reference),
                      final_step_floor=bed.final_step_floor or 0.0,
                      max_abs=max_abs(images), reference_max_abs=max_abs(bed.reference))
        if bed.modes is not None:
            record['wrong_mode'] = (bed.modes(images) != bed.modes(bed.reference)).double().mean().item()
        if bed.classify is not None and bed.labels is not None:
            record['class_hit'] = (bed.classify(images) == bed.labels.argmax(1)).double().mean().item()
        if bed.held_out is not None:
            record['fd_held_out'] = pixel_frechet_distance(images, bed.held_out)
        if inverse and method.invert is not None:
            start = method.invert(net, state, bed.labels, n)
            record['latent_recovery'] = relative_max_error(start[0] / karras_sigmas(n, net=net)[0], bed.latents)
            record['round_trip'] = relative_max_error(method.regenerate(net, start, bed.labels, n), images)
            encoded = method.encode(net, bed.real, bed.labels_of_real(), n)
            latents = encoded[0] / karras_sigmas(n, net=net)[0]
            record.update(encode_rms=rms(latents, bed.reference_latents), encode_std=latents.std().item(),
                          reference_latent_std=bed.reference_latents.std().item())
            if edit and bed.real_classes is not None:
                target = (bed.real_classes + 1) % net.label_dim
                edited = method.regenerate(net, encoded, bed.one_hot(target), n)
                record.update(edit_max_abs=max_abs(edited), real_max_abs=max_abs(bed.real),
                              edit_hit=(bed.classify(edited) == target).double().mean().item())
    record['seconds'] = time.time() - start_time
    return record


def run_grid(beds, methods, config):
    """Every (testbed, method, NFE) of the study's NFE grid, then the stability table at EDM's step counts."""
    records, stability = [], []
    for bed in beds:
        for method in methods:
            for nfe in config.nfes:
                record = measure(bed, method, nfe, edit=(nfe == config.edit_nfe))
                if record is not None:
                    records.append(record)
            config.log(f'  {bed.name:8s} {method.name:30s} ' + ' '.join(
                f'{r["rms"]:.1e}' for r in records if r['testbed'] == bed.name and r['method'] == method.name))
        for method in methods:
            for nfe in config.stability_nfes:
                if nfe in config.nfes:
                    stability += [r for r in records if r['testbed'] == bed.name and r['method'] == method.name
                                  and r['nfe'] == nfe]
                else:
                    record = measure(bed, method, nfe, inverse=False)
                    if record is not None:
                        stability.append(record)
    return records, stability
