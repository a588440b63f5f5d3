"""Timing tools for the benchmarks: round-robin repeats with a contention meter, GEMM peak, FLOPs per call and a
description of the machine. Variants are compared in the same rounds so that clock drift and neighbours hit them
alike (docs/performance.md, 'How to measure')."""

import os
import re
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from edm_bdia.speed.hardware import cpu_info

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal in /proc/stat's cpu line


def _busy_cpu_seconds():
    """CPU seconds all processes have spent busy since boot (None where /proc/stat is missing)."""
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    return sum(int(fields[i]) for i in _BUSY_FIELDS) / os.sysconf('SC_CLK_TCK')


def _own_cpu_seconds():
    """CPU seconds of this process and of its finished children (subprocess runs count as our own)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def load_average():
    """The 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


class Stopwatch:
    """Wall seconds of a block and the share of the machine's CPUs that OTHER processes used meanwhile (this
    process and the children it waited for count as its own)."""

    def __init__(self, sync=None):
        self.sync = sync or (lambda: None)

    def __enter__(self):
        self.sync()
        self._busy, self._own, self._wall = _busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.seconds = time.perf_counter() - self._wall
        busy = _busy_cpu_seconds()
        own = _own_cpu_seconds() - self._own
        self.foreign = (None if busy is None else
                        max(0.0, (busy - self._busy - own) / (self.seconds * os.cpu_count())))


def wait_for_quiet(max_foreign, timeout=60.0, interval=1.0):
    """Wait (up to `timeout` seconds) until other processes use at most `max_foreign` of the CPUs for one
    `interval`; returns the last share seen (None where /proc/stat is missing)."""
    deadline = time.perf_counter() + timeout
    while True:
        with Stopwatch() as watch:
            time.sleep(interval)
        if watch.foreign is None or watch.foreign <= max_foreign or time.perf_counter() > deadline:
            return watch.foreign


def round_robin(variants, rounds, warmup=None, sync=None, log=print, max_foreign=0.1, retries=1):
    """Run every variant once per round, `rounds` times, after `warmup` (calls each variant's warm-up function, or
    the variant itself). A repeat during which other processes used more than `max_foreign` of the CPUs is run
    again once the machine is quiet (wait_for_quiet), up to `retries` times; the least disturbed repeat is kept.
    Returns {name: dict(median, min, max, foreign, repeats, result)} over the kept repeats that stayed under
    `max_foreign` (all of them if none did), with `result` the last output and `foreign` the largest share other
    processes took during a counted repeat."""
    for name, fn in variants.items():
        (warmup or {}).get(name, fn)()
    runs = {name: [] for name in variants}
    results = {}
    for round_index in range(rounds):
        for name, fn in variants.items():
            attempts = []
            while not attempts or (attempts[-1].foreign or 0) > max_foreign and len(attempts) <= retries:
                if attempts:
                    wait_for_quiet(max_foreign)
                with Stopwatch(sync) as watch:
                    results[name] = fn()
                attempts.append(watch)
            runs[name].append(min(attempts, key=lambda w: w.foreign or 0))
        log(f'  round {round_index + 1}/{rounds}: ' + ', '.join(
            f'{n} {r[-1].seconds:.2f}s ({100 * (r[-1].foreign or 0):.0f}%)' for n, r in runs.items()))
    return {name: _summary(watches, max_foreign, results[name]) for name, watches in runs.items()}


def _summary(watches, max_foreign, result):
    """Median, min and max over the undisturbed repeats (all repeats when none was undisturbed)."""
    clean = [w for w in watches if (w.foreign or 0) <= max_foreign] or watches
    return dict(median=statistics.median(w.seconds for w in clean), min=min(w.seconds for w in clean),
                max=max(w.seconds for w in clean), foreign=max((w.foreign or 0) for w in clean),
                repeats=len(clean), result=result)


def gemm_gflops(dtype, device, size=2048, repeats=5):
    """torch.mm size³ throughput (2·size³ FLOP per product), median of `repeats` after one warm-up."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    sync = torch.cuda.synchronize if device.type == 'cuda' else None
    torch.mm(a, b)
    seconds = []
    for _ in range(repeats):
        with Stopwatch(sync) as watch:
            torch.mm(a, b)
        seconds.append(watch.seconds)
    return 2 * size ** 3 / statistics.median(seconds) / 1e9


def flops_per_call(fn):
    """FLOPs that torch.utils.flop_counter attributes to one call of fn() (conv, mm, bmm; 2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def describe_machine(device):
    """One line: CPU (or GPU) model, threads, torch and oneDNN versions."""
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}'
    match = re.search(r'MKL-DNN v([\d.]+)', torch.__config__.show())
    onednn = match[1] if match else 'unknown'
    return (f'{cpu_info().model}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch '
            f'{torch.__version__}, oneDNN {onednn}')

