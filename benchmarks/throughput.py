"""Throughput of the four published EDM architectures on this machine, and what each speed mode buys.

Measures in one run (variants round-robin, perf.md §0): this machine's GEMM peak (torch.mm 2048³, fp32 and bf16);
FLOPs per image-evaluation (torch.utils.flop_counter) and seconds per image-evaluation of CIFAR-10 DDPM++, FFHQ
DDPM++, AFHQv2 NCSN++ and ImageNet ADM (full size, random non-degenerate weights) in the reference, fast and bf16
modes (edm_bdia.speed), with max |dD| against the reference; the user-batch-32 ratios and tile sweep on CIFAR-10;
images/s end to end through the generate engine (sampling and PNG writing) for edm and bdia at user batches 8, 32
and 64, the time spent outside the network, the changed pixels of the final images and BDIA's overhead at equal
NFE; peak RSS against the number of seeds and for ImageNet ADM at batch 32; the FID pipeline
(benchmarks/fid_speed.py) when the Inception weights are available.

    python benchmarks/throughput.py            # full run (about 10-15 minutes on 2 cores), writes results/throughput.md
    python benchmarks/throughput.py --quick    # smoke run of every section on CIFAR-10 only (about 2 minutes)
"""

import argparse
import copy
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_engine import ZeroCostNet, nfe_per_image, run_engine, sampler_for  # noqa: E402
from bench_timing import Stopwatch, describe_machine, flops_per_call, gemm_gflops, round_robin  # noqa: E402

from edm_bdia.generation.network import SamplingNet  # noqa: E402
from edm_bdia.networks.published import PUBLISHED_ARCHITECTURES, build_published  # noqa: E402
from edm_bdia.speed import accelerate  # noqa: E402

CPU = torch.device('cpu')
# Per-sample noise levels of the per-architecture calls (perf.md §5): the whole range the samplers visit.
SIGMAS = (80, 20, 5, 1, 0.3, 0.1, 0.02, 0.002)
RECOMMENDED_NFE = 35  # CIFAR-10 at EDM's recommended 18 steps


@dataclasses.dataclass
class Settings:
    archs: tuple = tuple(PUBLISHED_ARCHITECTURES)
    arch_batch: int = 8  # per-architecture calls: one tile
    rounds: int = 2
    target_batch: int = 32  # the user batch of the targets
    # the user-batch sweep: (mode, channels_last, tile) next to the two references
    sweep: tuple = (('fast', False, 8), ('fast', True, 4), ('fast', True, 8), ('fast', True, 16), ('bf16', False, 8),
                    ('bf16', True, 8), ('bf16', True, 16))
    compile_sweep: tuple = (('fast', False, 32), ('fast', True, 8))  # with --compile (about 2 minutes each)
    pixel_steps: int = 18  # final-image comparison at EDM's recommended CIFAR-10 settings
    pixel_seeds: int = 4
    e2e_arch: str = 'cifar10-ddpmpp-cond'
    e2e_steps: int = 2
    e2e_batches: tuple = (8, 32, 64)
    overhead_steps: int = 18
    overhead_seeds: int = 256
    rss_seeds: tuple = (500, 10000)
    rss_batch: int = 64
    adm_rss: tuple = ('imagenet-adm-cond', 32)
    fid_images: int = 32


QUICK = Settings(archs=('cifar10-ddpmpp-cond',), arch_batch=2, rounds=1, target_batch=4,
                 sweep=(('fast', False, 4), ('fast', True, 2), ('bf16', True, 2)), compile_sweep=(('fast', True, 2),),
                 pixel_steps=3, pixel_seeds=2, e2e_batches=(2, 4), overhead_seeds=16, rss_seeds=(20, 200), rss_batch=8,
                 adm_rss=('cifar10-ddpmpp-cond', 4), fid_images=0)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def denoiser_inputs(net, batch, seed=0):
    """Noisy images at per-sample sigmas cycling through SIGMAS, float64 like the samplers' state."""
    gen = torch.Generator().manual_seed(seed)
    sigma = torch.tensor([SIGMAS[i % len(SIGMAS)] for i in range(batch)], dtype=torch.float64)
    x = torch.randn(batch, net.img_channels, net.img_resolution, net.img_resolution, generator=gen,
                    dtype=torch.float64) * (sigma ** 2 + 0.25).sqrt().reshape(-1, 1, 1, 1)
    labels = (torch.eye(net.label_dim)[torch.randint(net.label_dim, (batch,), generator=gen)]
              if net.label_dim else None)
    return x, sigma, labels


def variant_name(mode, plan):
    return f'{mode} {"NHWC" if plan.channels_last else "NCHW"} t{plan.tile}{" compiled" if plan.compile else ""}'


def mode_variants(net, batch, specs):
    """name -> net-like call: the reference as NVlabs calls it (the whole batch at once), the reference as the
    generate engine calls it on the CPU (one sample per call), and one accelerated copy of `net` per spec
    (accelerate keyword arguments; tile sizes of the same mode and layout share the converted copy)."""
    variants = {f'reference b{batch}': net, 'reference per-sample': SamplingNet(net, CPU, CPU, tile=1)}
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
    variants = mode_variants(net, settings.arch_batch, [dict(mode='fast', tile=settings.arch_batch),
                                                         dict(mode='bf16', tile=settings.arch_batch)])
    timings = time_variants(variants, denoiser_inputs(net, settings.arch_batch), settings.rounds)
    reference = timings[f'reference b{settings.arch_batch}']['result']
    row = dict(arch=arch, params=sum(p.numel() for p in net.parameters()), gflop=flops / 1e9,
               foreign=max(t['foreign'] for t in timings.values()))
    for name, timing in timings.items():
        key = name.split()[0] if name.startswith(('fast', 'bf16')) else name.replace(f' b{settings.arch_batch}', '')
        row[key] = timing['median'] / settings.arch_batch
        row[f'{key} variant'] = name
        if key in ('fast', 'bf16'):
            row[f'{key} dD'] = (timing['result'] - reference).abs().max().item()
    for key, peak in (('reference', peaks['fp32']), ('fast', peaks['fp32']), ('bf16', peaks['bf16'])):
        row[f'{key} %peak'] = 100 * flops / row[key] / (peak * 1e9)
    return row


def measure_target_batch(settings, compile_too):
    arch = settings.e2e_arch
    log(f'{arch}: user batch {settings.target_batch}, tile and layout sweep')
    net = build_published(arch)
    specs = [dict(mode=mode, channels_last=layout, tile=tile) for mode, layout, tile in settings.sweep]
    specs += [dict(mode=mode, channels_last=layout, tile=tile, compile=True)
              for mode, layout, tile in (settings.compile_sweep if compile_too else ())]
    variants = mode_variants(net, settings.target_batch, specs)
    timings = time_variants(variants, denoiser_inputs(net, settings.target_batch, seed=1), settings.rounds)
    reference = timings[f'reference b{settings.target_batch}']['result']
    for timing in timings.values():
        timing['dD'] = (timing['result'] - reference).abs().max().item()
        del timing['result']
    return timings


def read_pngs(outdir):
    return np.stack([np.asarray(Image.open(os.path.join(outdir, name)))
                     for name in sorted(os.listdir(outdir)) if name.endswith('.png')])


def engine_nets(arch):
    """The architecture as the engine would get it in each mode (defaults of edm_bdia.speed)."""
    reference = build_published(arch)
    return dict(reference=reference, fast=accelerate(copy.deepcopy(reference), 'fast'),
                bf16=accelerate(copy.deepcopy(reference), 'bf16'))


def measure_end_to_end(settings, workdir):
    """The generate engine on the CIFAR-10 architecture: reference (per-sample calls, as the engine makes them on
    CPU), fast and bf16, edm and bdia (gamma 0.5) at equal NFE."""
    steps = settings.e2e_steps
    nets = engine_nets(settings.e2e_arch)
    middle = settings.e2e_batches[len(settings.e2e_batches) // 2]
    runs = [('reference', 'edm', middle), ('bf16', 'edm', middle)]
    runs += [('fast', sampler, batch) for batch in settings.e2e_batches for sampler in ('edm', 'bdia')]
    rows = []
    for mode, sampler, batch in runs:
        outdir = os.path.join(workdir, f'{mode}-{sampler}-{batch}')
        log(f'engine: {mode} {sampler} batch {batch}, {steps} steps')
        run_engine(nets[mode], sampler_for(sampler, steps), range(min(2, batch)), batch, outdir + '-warmup')
        with Stopwatch() as watch:
            wall, network = run_engine(nets[mode], sampler_for(sampler, steps), range(batch), batch, outdir)
        rows.append(dict(mode=mode, sampler=sampler, batch=batch, images=batch, wall=wall, network=network,
                         foreign=watch.foreign or 0,
                         nfe=nfe_per_image(steps), variant=variant_name(mode, nets[mode].plan)
                         if mode != 'reference' else 'reference per-sample'))
    return rows


def measure_pixels(settings, workdir):
    """Final images of the engine at the recommended steps: uint8 values changed against the reference run."""
    nets = engine_nets(settings.e2e_arch)
    images = {}
    for mode, net in nets.items():
        log(f'pixels: {mode}, {settings.pixel_steps} steps, {settings.pixel_seeds} seeds')
        outdir = os.path.join(workdir, f'pixels-{mode}')
        run_engine(net, sampler_for('edm', settings.pixel_steps), range(settings.pixel_seeds),
                   settings.pixel_seeds, outdir)
        images[mode] = read_pngs(outdir).astype(int)
    result = {}
    for mode in ('fast', 'bf16'):
        diff = np.abs(images[mode] - images['reference'])
        result[mode] = dict(changed=float((diff > 0).mean()), max_level=int(diff.max()),
                            variant=variant_name(mode, nets[mode].plan))
    return result


def measure_overhead(settings):
    """Seconds per image outside the network (random streams, sampler arithmetic, uint8, PNG) with a zero-cost
    net at the recommended 18 steps, edm against bdia at equal NFE."""
    result = {}
    with tempfile.TemporaryDirectory() as workdir:
        for sampler in ('edm', 'bdia'):
            run_engine(ZeroCostNet(), sampler_for(sampler, settings.overhead_steps), range(8), 64,
                       os.path.join(workdir, 'warmup'))
        calls = {sampler: (lambda s=sampler: run_engine(ZeroCostNet(), sampler_for(s, settings.overhead_steps),
                                                        range(settings.overhead_seeds), 64,
                                                        os.path.join(workdir, s))[0])
                 for sampler in ('edm', 'bdia')}
        timings = round_robin(calls, 3, warmup={k: (lambda: None) for k in calls}, log=log)
    for sampler, timing in timings.items():
        result[sampler] = timing['median'] / settings.overhead_seeds
    return result


def child_json(*args):
    """Run memory_probe.py in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, os.path.join(HERE, 'memory_probe.py'), *map(str, args)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_memory(settings):
    log('memory: engine with a zero-cost net, ' + ' vs '.join(map(str, settings.rss_seeds)) + ' seeds')
    engine = {seeds: child_json('engine', seeds, settings.rss_batch)['peak_rss'] for seeds in settings.rss_seeds}
    arch, batch = settings.adm_rss
    network = {}
    for mode in ('fast', 'bf16'):
        log(f'memory: {arch} batch {batch}, {mode}')
        network[mode] = child_json('network', arch, mode, batch)
    return engine, network


def measure_fid(settings):
    if not settings.fid_images:
        return None
    try:
        from fid_speed import extraction_rate, frechet_seconds

        from edm_bdia.fid.detector import load_detector_with_info
        detector, info = load_detector_with_info(None, device=CPU)
    except Exception as exc:  # noqa: BLE001 -- reported in the table; the rest of the benchmark stands
        return dict(skipped=f'{type(exc).__name__}: {str(exc).splitlines()[0]}')
    log('FID pipeline: Inception features and Frechet distance')
    rates = {res: extraction_rate(detector, res, settings.fid_images, 16, CPU) for res in (32, 64)}
    return dict(source=info['source'], rates=rates, frechet=frechet_seconds())


# ---------------------------------------------------------------------------------------------------- report


def table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def verdict(ok):
    return 'met' if ok else '**not met**'


def report(settings, machine, peaks, arch_rows, target, e2e, pixels, overhead, memory, fid, quick):
    b, tb = settings.arch_batch, settings.target_batch
    out = [f'# Throughput on this machine{" (--quick smoke run, not representative)" if quick else ""}', '',
           f'Machine: {machine}. Run {datetime.datetime.now():%Y-%m-%d %H:%M}. GEMM peak (torch.mm 2048³): '
           f'fp32 **{peaks["fp32"]:.0f}** GFLOP/s, bf16 **{peaks["bf16"]:.0f}** GFLOP/s.', '',
           f'## Network: seconds per image-evaluation (batch {b}, per-sample sigma 80 … 0.002; median of '
           f'{settings.rounds} round-robin rounds)', '',
           'reference = NVlabs arithmetic, the whole batch in one call; per-sample = reference as the generate '
           'engine calls it on CPU (one sample per call, batch-invariant images); fast = NHWC fp32 in tiles; '
           'bf16 = fast with a bf16 UNet. "peak" = achieved GFLOP/s / GEMM peak of that precision. max |dD| '
           'against the reference output. "other load" = the largest share of the CPUs other processes used '
           'during a timed call.', '']
    rows = []
    for r in arch_rows:
        rows.append([r['arch'], f'{r["params"] / 1e6:.1f} M', f'{r["gflop"]:.2f}', f'{r["reference"]:.3f}',
                     f'{r["reference per-sample"]:.3f}', f'{r["fast"]:.3f}', f'{r["bf16"]:.3f}',
                     f'{r["reference"] / r["fast"]:.2f}x', f'{r["reference"] / r["bf16"]:.2f}x',
                     f'{r["reference %peak"]:.0f}% / {r["fast %peak"]:.0f}% / {r["bf16 %peak"]:.0f}%',
                     f'{r["fast dD"]:.1e}', f'{r["bf16 dD"]:.1e}', f'{100 * r["foreign"]:.0f}%'])
    out += [table(['architecture', 'params', 'GFLOP/img', 'reference s', 'per-sample s', 'fast s', 'bf16 s',
                   'fast speed-up', 'bf16 speed-up', 'peak ref/fast/bf16', 'fast max|dD|', 'bf16 max|dD|',
                   'other load'], rows), '']

    ref = target[f'reference b{tb}']['median']
    per_sample = target['reference per-sample']['median']
    out += [f'## User batch {tb} ({settings.e2e_arch}): tile sweep and speed-ups', '',
            f'Seconds per image-evaluation; speed-up against the reference at batch {tb} in one call (NVlabs) and '
            'against the engine\'s per-sample reference calls.', '']
    out += [table(['variant', 's/img', f'vs reference b{tb}', 'vs per-sample', 'max|dD|', 'spread (min-max)',
                   'other load'],
                  [[name, f'{t["median"] / tb:.4f}', f'{ref / t["median"]:.2f}x', f'{per_sample / t["median"]:.2f}x',
                    f'{t["dD"]:.1e}', f'{t["min"] / tb:.4f}-{t["max"] / tb:.4f}', f'{100 * t["foreign"]:.0f}%']
                   for name, t in target.items()]), '']

    out += [f'## End to end through the generate engine ({settings.e2e_arch}, --steps {settings.e2e_steps} = '
            f'{nfe_per_image(settings.e2e_steps)} NFE, PNGs written)', '',
            f'"img·NFE/s" = images/s × NFE per image; projected img/s at {RECOMMENDED_NFE} NFE (18 steps) = that / '
            f'{RECOMMENDED_NFE}. "outside network" = wall time not spent inside network calls (random streams, '
            'sampler arithmetic, uint8, PNG writing, the engine\'s batching).', '']
    rows = []
    for r in e2e:
        rate = r['images'] / r['wall']
        rows.append([r['variant'], r['sampler'], r['batch'], f'{r["wall"]:.1f}', f'{rate:.3f}',
                     f'{rate * r["nfe"]:.2f}', f'{rate * r["nfe"] / RECOMMENDED_NFE:.4f}',
                     f'{100 * (r["wall"] - r["network"]) / r["wall"]:.2f}%', f'{100 * r["foreign"]:.0f}%'])
    out += [table(['mode', 'sampler', 'batch', 'wall s', 'img/s', 'img·NFE/s', f'img/s at {RECOMMENDED_NFE} NFE',
                   'outside network', 'other load'], rows), '']
    out += [f'Final images at --steps {settings.pixel_steps} ({settings.pixel_seeds} seeds, edm): uint8 values '
            'that differ from the reference run\'s PNGs. ' + '; '.join(
                f'{p["variant"]}: {100 * p["changed"]:.3f}% changed, max {p["max_level"]} level(s)'
                for p in pixels.values()) + '. (Random weights: real checkpoints may differ.)', '']

    fast_per_image_nfe = arch_rows[0]['fast']
    edm_s, bdia_s = overhead['edm'], overhead['bdia']
    nfe = nfe_per_image(settings.overhead_steps)
    network_s = fast_per_image_nfe * nfe
    out += [f'## Outside the network at {settings.overhead_steps} steps ({nfe} NFE), zero-cost stand-in net, batch 64',
            '', table(['sampler', 's/img outside the network', f'share of wall with the fast {settings.e2e_arch} net'],
                      [[name, f'{s:.5f}', f'{100 * s / (s + network_s):.3f}%'] for name, s in overhead.items()]),
            '', f'BDIA overhead at equal NFE: {(bdia_s - edm_s) * 1e3:+.3f} ms/img = '
            f'{100 * (bdia_s - edm_s) / (edm_s + network_s):+.3f}% of the edm wall time.', '']

    engine_rss, network_rss = memory
    seeds_small, seeds_large = settings.rss_seeds
    growth = engine_rss[seeds_large] / engine_rss[seeds_small] - 1
    arch, batch = settings.adm_rss
    out += ['## Peak memory (RSS, fresh process each)', '',
            table(['what', 'peak RSS'],
                  [[f'engine, zero-cost net, {seeds} seeds, batch {settings.rss_batch}, PNGs',
                    f'{engine_rss[seeds] / 1e6:.0f} MB'] for seeds in settings.rss_seeds] +
                  [[f'{arch}, user batch {batch}, one denoiser call, {mode}',
                    f'{r["peak_rss"] / 1e9:.2f} GB (network built: {r["rss_before"] / 1e9:.2f} GB)']
                   for mode, r in network_rss.items()]),
            '', f'Growth from {seeds_small} to {seeds_large} seeds: {100 * growth:+.1f}%.', '']

    if fid is not None:
        out += ['## FID pipeline (benchmarks/fid_speed.py)', '']
        if 'skipped' in fid:
            out += [f'Skipped: {fid["skipped"]}', '']
        else:
            out += [table(['step', 'speed'],
                          [[f'Inception features, {res}x{res} images', f'{rate:.2f} img/s']
                           for res, rate in fid['rates'].items()] +
                          [[f'Frechet distance 2048-d, {method}', f'{seconds:.2f} s']
                           for method, (seconds, _) in fid['frechet'].items()]), '',
                    f'Inception weights: {fid["source"]}.', '']

    fast_tile = min((n for n in target if n.startswith('fast')), key=lambda n: target[n]['median'])
    bf16_tile = min((n for n in target if n.startswith('bf16')), key=lambda n: target[n]['median'])
    fast_ratio, bf16_ratio = ref / target[fast_tile]['median'], ref / target[bf16_tile]['median']
    fast_pixels = pixels['fast']
    roof_share = arch_rows[0]['gflop'] / (ref / tb) / peaks['fp32']  # the reference's share of the fp32 GEMM peak
    outside = max(100 * (r['wall'] - r['network']) / r['wall'] for r in e2e)
    bdia_overhead = 100 * (bdia_s - edm_s) / (edm_s + network_s)
    adm_peak = network_rss['fast']['peak_rss'] / 1e9
    out += ['## Targets (ratios in this run)', '', table(['target', 'measured', ''], [
        [f'fast fp32 >= 1.25x the reference at user batch {tb}', f'{fast_ratio:.2f}x (best: {fast_tile}; '
         f'{per_sample / target[fast_tile]["median"]:.2f}x the per-sample engine path); the reference runs at '
         f'{100 * roof_share:.0f}% of this run\'s fp32 GEMM peak', verdict(fast_ratio >= 1.25)],
        ['fast: >= 99.9% of pixels identical, never more than 1 level apart',
         f'{100 - 100 * fast_pixels["changed"]:.3f}% identical, max {fast_pixels["max_level"]} ({fast_pixels["variant"]})',
         verdict(fast_pixels['changed'] <= 1e-3 and fast_pixels['max_level'] <= 1)],
        [f'bf16 >= 2.2x at user batch {tb}', f'{bf16_ratio:.2f}x (best: {bf16_tile})', verdict(bf16_ratio >= 2.2)],
        ['time outside the network <= 0.5% of wall', f'{outside:.2f}% (worst engine run above)',
         verdict(outside <= 0.5)],
        ['BDIA overhead at equal NFE <= 1%', f'{bdia_overhead:+.3f}%', verdict(bdia_overhead <= 1)],
        [f'peak RSS flat in the number of seeds (within 5%, {seeds_small} vs {seeds_large})', f'{100 * growth:+.1f}%',
         verdict(abs(growth) <= 0.05)],
        [f'{arch} at batch {batch}: peak RSS <= 4.3 GB (fp32 fast mode)', f'{adm_peak:.2f} GB',
         verdict(adm_peak <= 4.3)],
    ]), '']
    return '\n'.join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='smoke run: CIFAR-10 only, tiny batches, 1 round')
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile (inductor, weight freezing) variants: about 2 more minutes each')
    parser.add_argument('--out', help='markdown output (default: results/throughput.md; none with --quick)')
    args = parser.parse_args()
    settings = QUICK if args.quick else Settings()
    out_path = args.out or (None if args.quick else os.path.join(HERE, 'results', 'throughput.md'))

    machine = describe_machine(CPU)
    log(f'machine: {machine}')
    peaks = dict(fp32=gemm_gflops(torch.float32, CPU), bf16=gemm_gflops(torch.bfloat16, CPU))
    arch_rows = [measure_architecture(arch, settings, peaks) for arch in settings.archs]
    target = measure_target_batch(settings, args.compile)
    with tempfile.TemporaryDirectory() as workdir:
        e2e = measure_end_to_end(settings, workdir)
        pixels = measure_pixels(settings, workdir)
    overhead = measure_overhead(settings)
    memory = measure_memory(settings)
    fid = measure_fid(settings)
    markdown = report(settings, machine, peaks, arch_rows, target, e2e, pixels, overhead, memory, fid, args.quick)
    print(markdown)
    if out_path:
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        with open(out_path, 'w') as f:
            f.write(markdown + '\n')
        log(f'written to {out_path}')


if __name__ == '__main__':
    main()
