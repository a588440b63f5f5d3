"""Throughput of the four published EDM architectures on this machine, what each speed mode buys, and the same-run
comparison against NVlabs.

Measures in one run (variants round-robin, so load drift hits them alike), and reports the CPU model, its ISA
flags and the modes `auto` and the default choose here:
* this machine's GEMM peak (torch.mm 2048³, fp32 and bf16);
* FLOPs per image-evaluation and seconds per image-evaluation of CIFAR-10 DDPM++, FFHQ DDPM++, AFHQv2 NCSN++ and
  ImageNet ADM (full size, random non-degenerate weights) in the reference, fast and bf16 modes, max |dD| against
  the reference;
* at user batch 32 (CIFAR-10): NVlabs' whole-batch call against every reference tile (the default's tile is chosen
  from this) and the fast / bf16 tiles and layouts;
* versus NVlabs, whole process, same pickle: NVlabs' own generate.py when `--nvlabs PATH` names a checkout of
  NVlabs/edm (run on the CPU by benchmarks/nvlabs_baseline.py), else an in-process restatement of its call pattern
  (the whole user batch in one reference network call, float64 sampler state), against `python -m edm_bdia
  generate --speed MODE`; the PNG values that differ from the baseline's;
* time outside the network (zero-cost stand-in net) for edm and bdia; peak RSS against the number of seeds and for
  ImageNet ADM at batch 32; the FID pipeline (benchmarks/fid_speed.py) when the Inception weights are installed.

bf16 is measured only where the CPU computes it natively; elsewhere `--speed bf16` must be refused, and that
refusal is what the run checks.

    python -m benchmarks.throughput                 # full run (about 15 minutes on 2 cores)
    python -m benchmarks.throughput --nvlabs ~/edm  # the same, against NVlabs' own generate.py
    python -m benchmarks.throughput --quick         # smoke run of every section on CIFAR-10 only (a few minutes)

Results go to results/throughput-<cpu kind>.md (e.g. throughput-amd-avx512bf16.md), one file per kind of CPU.
"""

import argparse
import copy
import dataclasses
import datetime
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
from PIL import Image

from edm_bdia.networks.published import PUBLISHED_ARCHITECTURES, build_published
from edm_bdia.speed import accelerate, apply_plan, auto_mode, cpu_info, make_plan

from .common.denoiser_inputs import denoiser_inputs
from .common.engine import ZeroCostNet, nfe_per_image, run_engine, sampler_for
from .common.fid_timing import extraction_rate, frechet_seconds
from .common.markdown import table
from .common.nvlabs_commands import check_checkout, nvlabs_command, restated_command, write_nvlabs_pickle
from .common.paths import REPO_ROOT, RESULTS_DIR, module_command
from .common.timing import describe_machine, flops_per_call, gemm_gflops, load_average, round_robin

CPU = torch.device('cpu')
RECOMMENDED_NFE = 35  # CIFAR-10 at EDM's recommended 18 steps
OUR_MODES = ('reference', 'fast', 'bf16')  # run by name in the versus-NVlabs section; auto is one of them


@dataclasses.dataclass
class Settings:
    archs: tuple = tuple(PUBLISHED_ARCHITECTURES)
    arch_batch: int = 8  # per-architecture calls: one tile
    rounds: int = 2
    target_batch: int = 32  # the user batch of the targets
    reference_tiles: tuple = (1, 4, 8, 16)  # the default's tile is chosen among these
    # the user-batch sweep: (mode, channels_last, tile) next to the references
    sweep: tuple = (('fast', False, 8), ('fast', True, 4), ('fast', True, 8), ('fast', True, 16), ('bf16', True, 8),
                    ('bf16', True, 16))
    compile_sweep: tuple = (('fast', False, 32), ('fast', True, 8))  # with --compile (about 2 minutes each)
    arch: str = 'cifar10-ddpmpp-cond'  # the user-batch, versus-NVlabs and pixel sections
    versus_seeds: int = 32
    versus_steps: int = 3
    versus_rounds: int = 2
    pixel_steps: int = 18  # final-image comparison at EDM's recommended CIFAR-10 settings
    pixel_seeds: int = 4
    overhead_steps: int = 18
    overhead_seeds: int = 256
    rss_seeds: tuple = (500, 10000)
    rss_batch: int = 64
    adm_rss: tuple = ('imagenet-adm-cond', 32)
    fid_images: int = 32


QUICK = Settings(archs=('cifar10-ddpmpp-cond',), arch_batch=2, rounds=1, target_batch=4, reference_tiles=(1, 2),
                 sweep=(('fast', False, 4), ('fast', True, 2), ('bf16', True, 2)), compile_sweep=(('fast', True, 2),),
                 versus_seeds=4, versus_steps=2, versus_rounds=1, pixel_steps=3, pixel_seeds=2, overhead_seeds=16,
                 rss_seeds=(20, 200), rss_batch=8, adm_rss=('cifar10-ddpmpp-cond', 4), fid_images=0)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def bf16_native():
    return cpu_info().native_bf16


def variant_name(mode, plan):
    if mode == 'reference':
        return f'reference t{plan.tile}'
    return f'{mode} {"NHWC" if plan.channels_last else "NCHW"} t{plan.tile}{" compiled" if plan.compile else ""}'


def plan_name(plan):
    """'bf16 NHWC t8' for a plan (the mode `auto` resolved to, for auto plans)."""
    return variant_name(plan.mode, plan)


def mode_variants(net, batch, specs, reference_tiles):
    """name -> net-like call: the reference as NVlabs calls it (the whole batch at once), the reference on each of
    `reference_tiles` (as the engine calls it, batch-invariant), and one accelerated copy of `net` per spec
    (accelerate keyword arguments; tile sizes of the same mode and layout share the converted copy)."""
    variants = {f'reference b{batch}': net}
    for tile in reference_tiles:
        variants[f'reference t{tile}'] = apply_plan(net, make_plan('reference', CPU, tile=tile), CPU)
    converted = {}
    for spec in specs:
        key = (spec['mode'], spec.get('channels_last'), spec.get('compile', False))
        if key not in converted:
            converted[key] = accelerate(copy.deepcopy(net), **spec)
        accelerated = _with_tile(converted[key], spec.get('tile') or converted[key].plan.tile)
        variants[variant_name(spec['mode'], accelerated.plan)] = accelerated
    return variants


def _with_tile(accelerated, tile):
    """A view of an AcceleratedNet with another tile size (same converted network)."""
    view = copy.copy(accelerated)
    view.plan = dataclasses.replace(accelerated.plan, tile=tile)
    return view


def native_specs(specs):
    """The specs this CPU runs: bf16 only where it is native (elsewhere the mode is refused)."""
    return [spec for spec in specs if spec['mode'] != 'bf16' or bf16_native()]


def time_variants(variants, inputs, rounds):
    x, sigma, labels = inputs
    calls = {name: (lambda net=net: _call(net, x, sigma, labels)) for name, net in variants.items()}
    warmups = {name: (lambda net=net: _call(net, x[:2], sigma[:2], labels[:2] if labels is not None else None))
               for name, net in variants.items()}
    return round_robin(calls, rounds, warmup=warmups, log=log)


def _call(net, x, sigma, labels):
    with torch.no_grad():
        return net(x, sigma, labels)


def measure_architecture(arch, settings, peaks):
    log(f'{arch}: building')
    net = build_published(arch)
    x1, s1, l1 = denoiser_inputs(net, 1)
    flops = flops_per_call(lambda: net(x1, s1, l1))
    b = settings.arch_batch
    variants = mode_variants(net, b, native_specs([dict(mode='fast', tile=b), dict(mode='bf16', tile=b)]), ())
    timings = time_variants(variants, denoiser_inputs(net, b), settings.rounds)
    reference = timings[f'reference b{b}']['result']
    row = dict(arch=arch, params=sum(p.numel() for p in net.parameters()), gflop=flops / 1e9,
               foreign=max(t['foreign'] for t in timings.values()))
    for name, timing in timings.items():
        key = name.split()[0]
        row[key] = timing['median'] / b
        if key != 'reference':
            row[f'{key} dD'] = (timing['result'] - reference).abs().max().item()
    for key, peak in (('reference', peaks['fp32']), ('fast', peaks['fp32']), ('bf16', peaks['bf16'])):
        if key in row:
            row[f'{key} %peak'] = 100 * flops / row[key] / (peak * 1e9)
    return row


def measure_target_batch(settings, compile_too):
    log(f'{settings.arch}: user batch {settings.target_batch}, reference tiles, fast/bf16 tiles and layouts')
    net = build_published(settings.arch)
    specs = [dict(mode=mode, channels_last=layout, tile=tile) for mode, layout, tile in settings.sweep]
    specs += [dict(mode=mode, channels_last=layout, tile=tile, compile=True)
              for mode, layout, tile in (settings.compile_sweep if compile_too else ())]
    variants = mode_variants(net, settings.target_batch, native_specs(specs), settings.reference_tiles)
    timings = time_variants(variants, denoiser_inputs(net, settings.target_batch, seed=1), settings.rounds)
    reference = timings[f'reference b{settings.target_batch}']['result']
    for timing in timings.values():
        timing['dD'] = (timing['result'] - reference).abs().max().item()
        del timing['result']
    return timings


def read_pngs(outdir):
    return np.stack([np.asarray(Image.open(os.path.join(outdir, name)))
                     for name in sorted(os.listdir(outdir)) if name.endswith('.png')])


def write_pickle(settings, workdir, nvlabs):
    """The network pickle both sides load: built by NVlabs' code with --nvlabs, else by edm_bdia's persistence."""
    net = build_published(settings.arch)
    path = os.path.join(workdir, f'{settings.arch}.pkl')
    if nvlabs:
        write_nvlabs_pickle(nvlabs, net, PUBLISHED_ARCHITECTURES[settings.arch], path, workdir)
    else:
        with open(path, 'wb') as f:
            pickle.dump(dict(ema=net), f)
    return path


def our_command(network, outdir, seeds, batch, steps, mode):
    return [sys.executable, '-m', 'edm_bdia', 'generate', '--network', network, '--outdir', outdir, '--seeds', seeds,
            '--batch', str(batch), '--steps', str(steps), '--device', 'cpu', '--speed', mode]


def refusal_line(network, workdir, mode):
    """The one error line of `--speed mode` where it is refused, or None when it runs."""
    result = subprocess.run(our_command(network, os.path.join(workdir, 'refused'), '0', 1, 2, mode),
                            capture_output=True, text=True)
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error')]
    return errors[0] if result.returncode != 0 and errors else None


def measure_versus(settings, workdir, network, nvlabs, seeds, steps, rounds, timed=True):
    """Whole-process runs, round-robin: the NVlabs baseline and `python -m edm_bdia generate --speed MODE` for each
    mode this CPU runs, at user batch settings.target_batch. Returns (timings, pixel differences against the
    baseline's PNGs, refusals). `timed=False`: for the pixels only (no repeat of disturbed runs)."""
    seed_text = f'0-{seeds - 1}'
    batch = settings.target_batch
    refusals = {} if bf16_native() else {'bf16': refusal_line(network, workdir, 'bf16')}
    modes = [mode for mode in OUR_MODES if mode not in refusals]
    commands = {'NVlabs': (nvlabs_command(nvlabs, network, '{}', seed_text, batch, steps) if nvlabs else
                           restated_command(network, '{}', seed_text, batch, steps))}
    commands.update({mode: our_command(network, '{}', seed_text, batch, steps, mode) for mode in modes})
    outdirs = {name: os.path.join(workdir, f'{name}-{steps}') for name in commands}

    def run(name):
        shutil.rmtree(outdirs[name], ignore_errors=True)
        log(f'  {name}: {seeds} seeds, --batch {batch} --steps {steps}')
        subprocess.run([arg.replace('{}', outdirs[name]) for arg in commands[name]], check=True,
                       capture_output=True, cwd=REPO_ROOT)
    timings = round_robin({name: (lambda name=name: run(name)) for name in commands}, rounds,
                          warmup={name: (lambda: None) for name in commands}, log=log, retries=1 if timed else 0)
    baseline = read_pngs(outdirs['NVlabs']).astype(int)
    pixels = {}
    for mode in modes:
        diff = np.abs(read_pngs(outdirs[mode]).astype(int) - baseline)
        pixels[mode] = dict(changed=float((diff > 0).mean()), max_level=int(diff.max()))
    for outdir in outdirs.values():
        shutil.rmtree(outdir, ignore_errors=True)
    return timings, pixels, refusals


def measure_overhead(settings):
    """Seconds per image outside the network (random streams, sampler arithmetic, uint8, PNG) with a zero-cost
    net at the recommended 18 steps, edm against bdia at equal NFE."""
    result = {}
    with tempfile.TemporaryDirectory() as workdir, warnings.catch_warnings():
        warnings.simplefilter('ignore')  # BDIA stability advice: the stand-in's images do not matter, only the cost
        for sampler in ('edm', 'bdia'):
            run_engine(ZeroCostNet(), sampler_for(sampler, settings.overhead_steps), range(8), 64,
                       os.path.join(workdir, f'warmup-{sampler}'))
        calls = {sampler: (lambda s=sampler: run_engine(ZeroCostNet(), sampler_for(s, settings.overhead_steps),
                                                        range(settings.overhead_seeds), 64,
                                                        os.path.join(workdir, s))[0])
                 for sampler in ('edm', 'bdia')}
        timings = round_robin(calls, 3, warmup={k: (lambda: None) for k in calls}, log=log)
    for sampler, timing in timings.items():
        result[sampler] = timing['median'] / settings.overhead_seeds
    return result


def child_json(*args):
    """Run benchmarks.memory_probe in a fresh process; its last stdout line is JSON."""
    out = subprocess.run(module_command('memory_probe', *args), check=True, capture_output=True, text=True,
                         cwd=REPO_ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_memory(settings):
    log('memory: engine with a zero-cost net, ' + ' vs '.join(map(str, settings.rss_seeds)) + ' seeds')
    engine = {seeds: child_json('engine', seeds, settings.rss_batch)['peak_rss'] for seeds in settings.rss_seeds}
    arch, batch = settings.adm_rss
    network = {}
    for mode in ('fast', 'bf16') if bf16_native() else ('fast',):
        log(f'memory: {arch} batch {batch}, {mode}')
        network[mode] = child_json('network', arch, mode, batch)
    return engine, network


def measure_fid(settings):
    if not settings.fid_images:
        return None
    try:
        from edm_bdia.fid.detector import load_detector_with_info
        detector, info = load_detector_with_info(None, device=CPU)
    except Exception as exc:  # noqa: BLE001 -- reported in the table; the rest of the benchmark stands
        return dict(skipped=f'{type(exc).__name__}: {str(exc).splitlines()[0]}')
    log('FID pipeline: Inception features and Frechet distance')
    rates = {res: extraction_rate(detector, res, settings.fid_images, 16, CPU) for res in (32, 64)}
    return dict(source=info['source'], rates=rates, frechet=frechet_seconds())


# ---------------------------------------------------------------------------------------------------- report


def verdict(ok):
    return 'met' if ok else '**not met**'


def fmt(value, spec, missing='-'):
    return missing if value is None else format(value, spec)


@dataclasses.dataclass
class Results:
    machine: str
    started: datetime.datetime
    minutes: float
    loads: tuple  # 1-minute load average at the start and at the end
    peaks: dict
    arch_rows: list
    target: dict
    versus: tuple  # (timings, pixels, refusals) at the versus settings
    final_pixels: tuple  # the same at pixel_steps and pixel_seeds: a small run (one round)
    overhead: dict
    memory: tuple
    fid: dict | None
    baseline: str  # what the NVlabs column is


def header_lines(settings, results, quick):
    info = cpu_info()
    auto_plan = make_plan('auto', CPU)
    default_plan = make_plan('reference', CPU, batch_invariant=True)
    start_load, end_load = results.loads
    foreign = max([t['foreign'] for t in results.target.values()] +
                  [t['foreign'] for t in results.versus[0].values()])
    return [f'# Throughput on {info.model} ({info.kind}){" (--quick smoke run, not representative)" if quick else ""}',
            '',
            f'- CPU: {info.model}, {info.architecture}, ISA flags: {" ".join(info.reported_flags()) or "none known"}'
            f'{info.cap_text()}; '
            f'bf16 {"native" if info.native_bf16 else "emulated (so --speed bf16 is refused)"}; PyTorch CPU '
            f'kernels: {torch.backends.cpu.get_cpu_capability()}.',
            f'- Software: {results.machine}.',
            f'- Run {results.started:%Y-%m-%d %H:%M}, {results.minutes:.1f} minutes. Load average (1 min) at start / '
            f'end: {fmt(start_load, ".1f")} / {fmt(end_load, ".1f")} on {os.cpu_count()} CPUs; the largest share of '
            f'the CPUs other processes used during a timed call: {100 * foreign:.0f}% (column "other load").',
            f'- Modes chosen here: default `--speed reference` = {plan_name(default_plan)}; `--speed auto` = '
            f'{plan_name(auto_plan)} ({auto_mode(CPU)[1]}).',
            f'- GEMM peak (torch.mm 2048³): fp32 **{results.peaks["fp32"]:.0f}** GFLOP/s, bf16 '
            f'**{results.peaks["bf16"]:.3g}** GFLOP/s{"" if info.native_bf16 else " (emulated)"}.', '']


def architecture_lines(settings, rows):
    b = settings.arch_batch
    out = [f'## Network: seconds per image-evaluation (batch {b}, per-sample sigma 80 … 0.002; median of '
           f'{settings.rounds} round-robin rounds)', '',
           f'reference = NVlabs arithmetic, {b} samples in one call (the default\'s tile); fast = NHWC fp32 in '
           'tiles; bf16 = fast with a bf16 UNet (only where bf16 is native). "peak" = achieved GFLOP/s / GEMM peak '
           'of that precision. max |dD| against the reference output.', '']
    table_rows = []
    for r in rows:
        bf16 = r.get('bf16')
        table_rows.append([r['arch'], f'{r["params"] / 1e6:.1f} M', f'{r["gflop"]:.2f}', f'{r["reference"]:.3f}',
                           f'{r["fast"]:.3f}', fmt(bf16, '.3f', 'refused'), f'{r["reference"] / r["fast"]:.2f}x',
                           '-' if bf16 is None else f'{r["reference"] / bf16:.2f}x',
                           f'{r["reference %peak"]:.0f}% / {r["fast %peak"]:.0f}% / '
                           f'{fmt(r.get("bf16 %peak"), ".0f")}%', f'{r["fast dD"]:.1e}', fmt(r.get('bf16 dD'), '.1e'),
                           f'{100 * r["foreign"]:.0f}%'])
    out += [table(['architecture', 'params', 'GFLOP/img', 'reference s', 'fast s', 'bf16 s', 'fast speed-up',
                   'bf16 speed-up', 'peak ref/fast/bf16', 'fast max|dD|', 'bf16 max|dD|', 'other load'], table_rows),
            '']
    return out


def target_lines(settings, target):
    tb = settings.target_batch
    ref = target[f'reference b{tb}']['median']
    out = [f'## User batch {tb} ({settings.arch}): reference tiles, fast and bf16 tiles', '',
           f'Seconds per image-evaluation of one denoiser call on {tb} samples; speed-up against NVlabs\' call (the '
           f'reference with all {tb} samples at once). "reference tN" = the reference arithmetic on fixed tiles of N '
           'samples (batch-invariant images); the default uses the tile in the header. Measured first in the '
           'process, as in a user\'s fresh generate.py process: once a larger network (ImageNet ADM) has run in the '
           'same process, the whole-batch call became up to 19% faster on AMD Zen 4 while tiled calls did not '
           'change (process memory state), so later in-process numbers would flatter the whole-batch call.', '']
    out += [table(['variant', 's/img', f'vs NVlabs b{tb}', 'max|dD|', 'spread (min-max)', 'other load'],
                  [[name, f'{t["median"] / tb:.4f}', f'{ref / t["median"]:.2f}x', f'{t["dD"]:.1e}',
                    f'{t["min"] / tb:.4f}-{t["max"] / tb:.4f}', f'{100 * t["foreign"]:.0f}%']
                   for name, t in target.items()]), '']
    return out


def versus_lines(settings, results):
    timings, pixels, refusals = results.versus
    small_timings, final_pixels, _ = results.final_pixels
    base = timings['NVlabs']['median']
    auto_mode_name = make_plan('auto', CPU).mode
    default_tile = make_plan('reference', CPU, batch_invariant=True).tile
    names = {'reference': f'edm_bdia `--speed reference` (default, t{default_tile})',
             'fast': 'edm_bdia `--speed fast`', 'bf16': 'edm_bdia `--speed bf16`'}
    out = [f'## Versus NVlabs: whole process, {settings.versus_seeds} seeds, `--batch={settings.target_batch} '
           f'--steps={settings.versus_steps}`, same pickle ({settings.arch})', '',
           f'Baseline: {results.baseline}. Each run is a fresh process (start-up, pickle load, sampling, PNGs); '
           f'median of {settings.versus_rounds} round-robin rounds. `--speed auto` is `--speed {auto_mode_name}` '
           'here (same plan). PNG values: share of uint8 values that differ from the baseline\'s PNGs, and the '
           f'largest difference; "{settings.pixel_steps} steps" = the same at --steps {settings.pixel_steps} with '
           f'{settings.pixel_seeds} seeds, a small run (one round), with its speed-up against the baseline\'s '
           f'{small_timings["NVlabs"]["median"]:.1f} s.', '']
    rows = [[results.baseline.split(' (')[0], f'{base:.1f}', f'{timings["NVlabs"]["min"]:.1f}-'
             f'{timings["NVlabs"]["max"]:.1f}', '1.00x', '-', '-', f'{100 * timings["NVlabs"]["foreign"]:.0f}%']]
    for mode in OUR_MODES:
        name = names[mode] + (' = auto' if mode == auto_mode_name else '')
        if mode in refusals:
            rows.append([name, 'refused', '', '', '', '', refusals[mode] or '**ran (should be refused)**'])
            continue
        t, p, q = timings[mode], pixels[mode], final_pixels.get(mode)
        small = (f'{100 * q["changed"]:.3f}%, max {q["max_level"]}; '
                 f'{small_timings["NVlabs"]["median"] / small_timings[mode]["median"]:.2f}x' if q else '-')
        rows.append([name, f'{t["median"]:.1f}', f'{t["min"]:.1f}-{t["max"]:.1f}', f'{base / t["median"]:.2f}x',
                     f'{100 * p["changed"]:.3f}%, max {p["max_level"]}', small, f'{100 * t["foreign"]:.0f}%'])
    out += [table(['run', 'wall s', 'spread s', 'speed-up', 'PNG values changed', f'{settings.pixel_steps} steps',
                   'other load'], rows), '']
    return out


def overhead_lines(settings, results):
    overhead = results.overhead
    network_s = results.arch_rows[0]['reference']
    nfe = nfe_per_image(settings.overhead_steps)
    edm_s, bdia_s = overhead['edm'], overhead['bdia']
    return [f'## Outside the network at {settings.overhead_steps} steps ({nfe} NFE), zero-cost stand-in net, '
            'batch 64', '',
            table(['sampler', 's/img outside the network', f'share of wall with the default {settings.arch} net'],
                  [[name, f'{s:.5f}', f'{100 * s / (s + network_s * nfe):.3f}%'] for name, s in overhead.items()]),
            '', f'BDIA overhead at equal NFE: {(bdia_s - edm_s) * 1e3:+.3f} ms/img = '
            f'{100 * (bdia_s - edm_s) / (edm_s + network_s * nfe):+.3f}% of the edm wall time.', '']


def memory_lines(settings, results):
    engine_rss, network_rss = results.memory
    small, large = settings.rss_seeds
    arch, batch = settings.adm_rss
    return ['## Peak memory (RSS, fresh process each)', '',
            table(['what', 'peak RSS'],
                  [[f'engine, zero-cost net, {seeds} seeds, batch {settings.rss_batch}, PNGs',
                    f'{engine_rss[seeds] / 1e6:.0f} MB'] for seeds in settings.rss_seeds] +
                  [[f'{arch}, user batch {batch}, one denoiser call, {mode}',
                    f'{r["peak_rss"] / 1e9:.2f} GB (network built: {r["rss_before"] / 1e9:.2f} GB)']
                   for mode, r in network_rss.items()]),
            '', f'Growth from {small} to {large} seeds: {100 * (engine_rss[large] / engine_rss[small] - 1):+.1f}%.',
            '']


def fid_lines(fid):
    if fid is None:
        return []
    out = ['## FID pipeline (benchmarks/fid_speed.py)', '']
    if 'skipped' in fid:
        return out + [f'Skipped: {fid["skipped"]}', '']
    return out + [table(['step', 'speed'],
                        [[f'Inception features, {res}x{res} images', f'{rate:.2f} img/s']
                         for res, rate in fid['rates'].items()] +
                        [[f'Frechet distance 2048-d, {method}', f'{seconds:.2f} s']
                         for method, (seconds, _) in fid['frechet'].items()]), '',
                  f'Inception weights: {fid["source"]}.', '']


def targets_lines(settings, results):
    timings, pixels, refusals = results.versus
    base = timings['NVlabs']['median']
    ratio = {mode: base / t['median'] for mode, t in timings.items() if mode != 'NVlabs'}
    best_fp32 = max(('reference', 'fast'), key=lambda mode: ratio[mode])
    engine_rss, network_rss = results.memory
    small, large = settings.rss_seeds
    growth = engine_rss[large] / engine_rss[small] - 1
    arch, batch = settings.adm_rss
    adm_peak = network_rss['fast']['peak_rss'] / 1e9
    network_s = results.arch_rows[0]['reference'] * nfe_per_image(settings.overhead_steps)
    edm_s, bdia_s = results.overhead['edm'], results.overhead['bdia']
    outside = 100 * max(results.overhead.values()) / (max(results.overhead.values()) + network_s)
    bdia_overhead = 100 * (bdia_s - edm_s) / (edm_s + network_s)
    same_standard = [mode for mode in ('reference', 'fast')
                     if pixels[mode]['changed'] <= 1e-3 and pixels[mode]['max_level'] <= 1]
    rows = [
        [f'default (reference) >= 1.0x NVlabs, whole process, user batch {settings.target_batch}',
         f'{ratio["reference"]:.2f}x', verdict(ratio['reference'] >= 1.0)],
        ['best fp32 mode >= 1.25x NVlabs', f'{ratio[best_fp32]:.2f}x ({best_fp32})', verdict(ratio[best_fp32] >= 1.25)],
    ]
    if 'bf16' in refusals:
        rows.append(['bf16 refused where the CPU would emulate it', refusals['bf16'] or 'it ran',
                     verdict(refusals['bf16'] is not None)])
    else:
        rows.append(['bf16 >= 2x fp32 where bf16 is native (NVlabs fp32 baseline)',
                     f'{ratio["bf16"]:.2f}x NVlabs, {ratio["bf16"] / ratio[best_fp32]:.2f}x the best fp32 mode',
                     verdict(ratio['bf16'] >= 2.0)])
    rows += [
        ['reference and fast images: <= 0.1% of PNG values differ from NVlabs\', by at most 1 level',
         '; '.join(f'{mode} {100 * pixels[mode]["changed"]:.3f}%, max {pixels[mode]["max_level"]}'
                   for mode in ('reference', 'fast')), verdict(len(same_standard) == 2)],
        ['time outside the network <= 0.5% of wall (18 steps)', f'{outside:.3f}%', verdict(outside <= 0.5)],
        ['BDIA overhead at equal NFE <= 1%', f'{bdia_overhead:+.3f}%', verdict(bdia_overhead <= 1)],
        [f'peak RSS flat in the number of seeds (within 5%, {small} vs {large})', f'{100 * growth:+.1f}%',
         verdict(abs(growth) <= 0.05)],
        [f'{arch} at batch {batch}: peak RSS <= 4.3 GB (fp32 fast mode)', f'{adm_peak:.2f} GB',
         verdict(adm_peak <= 4.3)],
    ]
    return ['## Targets (ratios in this run)', '', table(['target', 'measured', ''], rows), '']


def report(settings, results, quick):
    return '\n'.join(header_lines(settings, results, quick) + architecture_lines(settings, results.arch_rows) +
                     target_lines(settings, results.target) + versus_lines(settings, results) +
                     overhead_lines(settings, results) + memory_lines(settings, results) + fid_lines(results.fid) +
                     targets_lines(settings, results))


def default_out_path():
    return os.path.join(RESULTS_DIR, f'throughput-{cpu_info().kind}.md')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='smoke run: CIFAR-10 only, tiny batches, 1 round')
    parser.add_argument('--nvlabs', metavar='PATH', help='a checkout of NVlabs/edm: compare against its own '
                        'generate.py (run on the CPU) instead of the in-process restatement of its call pattern')
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile (inductor, weight freezing) variants: about 2 more minutes each')
    parser.add_argument('--out', help='markdown output (default: results/throughput-<cpu kind>.md; none with --quick)')
    args = parser.parse_args()
    settings = QUICK if args.quick else Settings()
    out_path = args.out or (None if args.quick else default_out_path())
    nvlabs = os.path.abspath(args.nvlabs) if args.nvlabs else None
    if nvlabs:
        check_checkout(nvlabs)

    started, start_load = datetime.datetime.now(), load_average()
    machine = describe_machine(CPU)
    log(f'machine: {machine}; {cpu_info().describe()}; load {start_load}')
    peaks = dict(fp32=gemm_gflops(torch.float32, CPU), bf16=gemm_gflops(torch.bfloat16, CPU))
    target = measure_target_batch(settings, args.compile)  # first: see target_lines
    arch_rows = [measure_architecture(arch, settings, peaks) for arch in settings.archs]
    with tempfile.TemporaryDirectory() as workdir:
        network = write_pickle(settings, workdir, nvlabs)
        log('versus NVlabs: whole-process runs')
        versus = measure_versus(settings, workdir, network, nvlabs, settings.versus_seeds, settings.versus_steps,
                                settings.versus_rounds)
        log(f'final images at {settings.pixel_steps} steps')
        final_pixels = measure_versus(settings, workdir, network, nvlabs, settings.pixel_seeds, settings.pixel_steps,
                                      1, timed=False)
    overhead = measure_overhead(settings)
    memory = measure_memory(settings)
    fid = measure_fid(settings)
    baseline = (f'NVlabs\' own generate.py (checkout {nvlabs}, run on the CPU by benchmarks/nvlabs_baseline.py)'
                if nvlabs else 'NVlabs call pattern, restated (benchmarks/nvlabs_baseline.py: the whole user batch in '
                               'one reference network call, float64 sampler state; no NVlabs checkout given)')
    results = Results(machine=machine, started=started, minutes=(datetime.datetime.now() - started).seconds / 60,
                      loads=(start_load, load_average()), peaks=peaks, arch_rows=arch_rows, target=target,
                      versus=versus, final_pixels=final_pixels, overhead=overhead, memory=memory, fid=fid,
                      baseline=baseline)
    markdown = report(settings, results, args.quick)
    print(markdown)
    if out_path:
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        with open(out_path, 'w') as f:
            f.write(markdown + '\n')
        log(f'written to {out_path}')


if __name__ == '__main__':
    main()
