"""Train the digits UNet shipped as the preset `digits-16x16-cond` and record how (benchmarks/digits_unet/).

A class-conditional EDM-preconditioned DDPM++ SongUNet (1.26 M parameters) on scikit-learn's digits upscaled to
16x16 (1437 train, 360 held out), EDM's loss, Adam, an EMA; one thread, seeded. Writes the NVlabs-layout pickle
(default: the packaged file edm_bdia/checkpoints/digits-16x16-cond.pkl) and, with the full settings,
benchmarks/results/digits_unet_training.{md,json} and the loss curve digits_unet_loss.png.

    nice -n 10 python -m benchmarks.train_digits_unet            # about 35 minutes on one AMD EPYC Zen 5 core (avx512_bf16)
    python -m benchmarks.train_digits_unet --quick --out=x.pkl   # 20 iterations (smoke test)
"""

import os

from edm_bdia.checkpoints.hashing import sha256_state
from edm_bdia.files import sha256_file
from edm_bdia.files.atomic import atomic_write

from .common.loglog_plot import save_panels
from .common.markdown import table
from .common.paths import REPO_ROOT, RESULTS_DIR
from .digits_unet.entry import entry_arguments
from .digits_unet.model import NETWORK, PRESET
from .digits_unet.report import machine_line, write_json
from .digits_unet.snapshot import snapshot_bytes
from .digits_unet.train import QUICK, SETTINGS, train

PACKAGED = os.path.join(REPO_ROOT, 'edm_bdia', 'checkpoints', f'{PRESET}.pkl')
DATASET = dict(name='scikit-learn digits', source='sklearn.datasets.load_digits',
               resolution=NETWORK['img_resolution'], upscaling='bilinear from 8x8', range=[-1, 1],
               split='every fifth image held out (1437 / 360)', class_labels=10)


def main(argv=None):
    args = entry_arguments(__doc__, argv, '20 iterations, no report (smoke test)', PACKAGED,
                           'where the pickle goes (default: the packaged file)')
    settings = QUICK if args.quick else SETTINGS
    machine = machine_line()
    print(f'training on {machine}')
    ema, curve, seconds = train(settings)
    blob = snapshot_bytes(ema, DATASET)
    atomic_write(args.out, lambda file: file.write(blob))
    record = dict(settings=settings, network=NETWORK, dataset=DATASET, machine=machine, seconds=round(seconds),
                  parameters=sum(p.numel() for p in ema.parameters()), file=os.path.relpath(args.out, REPO_ROOT),
                  bytes=os.path.getsize(args.out), sha256=sha256_file(args.out),
                  weights_sha256=sha256_state(ema), curve=curve)
    print(f'wrote {args.out} ({record["bytes"]} bytes, sha256 {record["sha256"]}; weights sha256 '
          f'{record["weights_sha256"]}) after {seconds:.0f} s')
    if not args.quick:
        write_report(record)


def write_report(record):
    write_json(os.path.join(RESULTS_DIR, 'digits_unet_training.json'), record)
    xs = [point['iteration'] for point in record['curve']]
    save_panels(os.path.join(RESULTS_DIR, 'digits_unet_loss.png'),
                [('EDM loss', [('training (mean over the interval)', xs, [p['train_loss'] for p in record['curve']],
                                None),
                               ('EMA, held out', xs, [p['held_out_loss'] for p in record['curve']], None)])],
                'iteration', 'loss')
    rows = [[p['iteration'], f'{p["train_loss"]:.4f}', f'{p["held_out_loss"]:.4f}', f'{p["seconds"]:.0f}']
            for p in record['curve']]
    text = '\n\n'.join([
        '# Digits UNet: training record',
        f'`python -m benchmarks.train_digits_unet` on {record["machine"]}: {record["seconds"]} s.',
        f'Network: EDMPrecond(SongUNet), {record["parameters"]} parameters, `{record["network"]}`.',
        f'Data: {record["dataset"]}.',
        f'Training: `{record["settings"]}` (EDM loss, Adam with warm-up and cosine decay, EMA ramped up as '
        '(1 + i) / (10 + i) to the stated decay, one thread).',
        f'File: `{record["file"]}`, {record["bytes"]} bytes, sha256 `{record["sha256"]}`. The weights\' sha256 '
        f'(edm_bdia.checkpoints.hashing.sha256_state) is `{record["weights_sha256"]}`: a rerun on the same torch '
        'build and CPU kind gives the same weights, but not the same file bytes (torch names each pickled storage '
        'by its memory address).',
        '![loss curve](digits_unet_loss.png)',
        table(['iteration', 'training loss', 'EMA held-out loss', 'seconds'], rows)])
    with open(os.path.join(RESULTS_DIR, 'digits_unet_training.md'), 'w', encoding='utf-8') as file:
        file.write(text + '\n')


if __name__ == '__main__':
    main()
