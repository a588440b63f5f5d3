"""The samplers ranked on the digits UNet (preset `digits-16x16-cond`): FID against the training digits and against
the held-out digits (this package's Inception pipeline, NVIDIA's weights) and a digit classifier's accuracy for the
asked class, at NFE 5, 9, 17, 35 and 79, three seeds of 64 images each, 95 % intervals over the seeds
(benchmarks/digits_unet/ranking.py). Writes benchmarks/results/digits_ranking.{md,json} and digits_ranking.png.

FIDs of 64 images are far above those of 50,000 (the estimate is biased upwards by the sample size); they rank the
methods, all measured at the same size; the held-out digits' own FID at the same size is the floor.

    nice -n 10 python -m benchmarks.digits_ranking           # about 40 minutes on one AMD EPYC Zen 5 core (avx512_bf16)
    python -m benchmarks.digits_ranking --quick --out=/tmp/r  # one NFE, 2 x 10 images (smoke test)
"""

import json
import os
import time

import torch

import edm_bdia

from .common.loglog_plot import DASHED, save_panels
from .common.markdown import table
from .common.paths import RESULTS_DIR
from .digits_unet.data import image_classifier, upscaled_split
from .digits_unet.entry import entry_arguments
from .digits_unet.features import DigitFeatures, FidReference
from .digits_unet.model import PRESET
from .digits_unet.ranking import FULL, QUICK, mean_and_half_width, methods, rank_cell
from .digits_unet.report import machine_line, write_json
from .study.digits import cache_dir


def main(argv=None):
    args = entry_arguments(__doc__, argv, 'one NFE, two seeds of 10 images (smoke test)', RESULTS_DIR,
                           'output folder (default: benchmarks/results)')
    plan = QUICK if args.quick else FULL
    os.makedirs(args.out, exist_ok=True)
    partial = os.path.join(args.out, 'digits_ranking.json')
    record = _resumed(partial, plan) or dict(plan=plan, machine=machine_line(), network=PRESET, cells=[])
    start = time.time()
    net = edm_bdia.load_network(PRESET)
    digit_features, classify = DigitFeatures(), image_classifier()
    train_x, _, held_x, held_y = (part[:plan['reference_images']] for part in upscaled_split())
    held_features = digit_features.cached_features(held_x, cache_dir())
    references = dict(train=FidReference.of(digit_features.cached_features(train_x, cache_dir())),
                      held_out=FidReference.of(held_features))
    record['floor'] = _floor(held_features, references['train'], plan)
    record['classifier_held_out_accuracy'] = (classify(held_x) == held_y).double().mean().item()
    done = {(cell['method'], cell['nfe']) for cell in record['cells']}
    for nfe in plan['nfes']:  # every method at one NFE before the next: an interrupted run compares them all
        for method in methods():
            if (method.name, nfe) in done:
                continue
            cell = rank_cell(net, method, nfe, plan['seeds'], plan['per_seed'], digit_features, references, classify)
            record['cells'].append(cell)
            write_json(partial, record)
            print(f'{method.name:32s} NFE {nfe:3d}: FID train {cell["pooled_fid_train"]:7.2f}, held out '
                  f'{cell["pooled_fid_held_out"]:7.2f}, accuracy '
                  f'{sum(s["accuracy"] for s in cell["seeds"]) / len(cell["seeds"]):.3f} ({cell["seconds"]:.0f} s)')
    record['seconds'] = round(time.time() - start + record.get('seconds', 0))
    write_json(partial, record)
    write_report(record, args.out)


def _resumed(path, plan):
    """The record of an interrupted run with the same plan, or None."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as file:
        record = json.load(file)
    return record if record.get('plan') == plan else None


def _floor(held_features, train_reference, plan):
    """FIDs of random subsets of the held-out digits, as many as one seed's samples, against the training digits:
    what a perfect sampler would score at this sample size."""
    values = []
    for seed in plan['seeds']:
        pick = torch.randperm(len(held_features), generator=torch.Generator().manual_seed(seed))[:plan['per_seed']]
        values.append(train_reference.fid(held_features[pick]))
    return values


def _cell_table(record, metric, fmt):
    nfes = record['plan']['nfes']
    names = list(dict.fromkeys(cell['method'] for cell in record['cells']))
    cells = {(cell['method'], cell['nfe']): cell for cell in record['cells']}
    rows = []
    for name in names:
        row = [name]
        for nfe in nfes:
            cell = cells.get((name, nfe))
            if cell is None:
                row.append('-')
                continue
            mean, half = mean_and_half_width([seed[metric] for seed in cell['seeds']])
            row.append(f'{fmt(mean)} ± {fmt(half)}')
        rows.append(row)
    return table(['method'] + [f'NFE {nfe}' for nfe in nfes], rows)


def _losses_of_default(record):
    """Where another method beats the default by more than both intervals' half widths together, per metric."""
    from .study.methods import DEFAULT
    lines = []
    by_key = {(cell['method'], cell['nfe']): cell for cell in record['cells']}
    for metric, better, label in (('fid_train', min, 'FID (training digits)'),
                                  ('fid_held_out', min, 'FID (held-out digits)'), ('accuracy', max, 'accuracy')):
        for nfe in record['plan']['nfes']:
            ours = by_key.get((DEFAULT, nfe))
            if ours is None:
                continue
            mean, half = mean_and_half_width([s[metric] for s in ours['seeds']])
            winners = []
            for (name, cell_nfe), cell in by_key.items():
                if cell_nfe != nfe or name == DEFAULT:
                    continue
                other, other_half = mean_and_half_width([s[metric] for s in cell['seeds']])
                if better(other, mean) == other and abs(other - mean) > half + other_half:
                    winners.append(f'{name} ({other:.3g} against {mean:.3g})')
            if winners:
                lines.append(f'- {label}, NFE {nfe}: ' + '; '.join(winners))
    return '\n'.join(lines) or '- nowhere beyond the intervals'


def _pooled_cell(cell):
    return '-' if cell is None else f'{cell["pooled_fid_train"]:.2f} / {cell["pooled_fid_held_out"]:.2f}'


def _nfe_note(record):
    """Which cells called the network other than NFE times per image (counted per seed's batch)."""
    off = [f'{cell["method"]} at NFE {cell["nfe"]}: {cell["nfe_counted"]:g}' for cell in record['cells']
           if cell['nfe_counted'] != cell['nfe']]
    return ('Network calls per image differing from the NFE: ' + '; '.join(off) if off
            else 'Every method called the network exactly NFE times per image (counted).')


def write_report(record, out):
    nfes = record['plan']['nfes']
    names = list(dict.fromkeys(cell['method'] for cell in record['cells']))
    cells = {(cell['method'], cell['nfe']): cell for cell in record['cells']}

    def series(metric, transform=lambda v: v):
        return [(name, nfes, [transform(mean_and_half_width([s[metric] for s in cells[name, nfe]['seeds']])[0])
                              if (name, nfe) in cells else None for nfe in nfes], None) for name in names]
    floor = [('floor: held-out digits', nfes, [mean_and_half_width(record['floor'])[0]] * len(nfes), DASHED)]
    save_panels(os.path.join(out, 'digits_ranking.png'),
                [('FID against the training digits', series('fid_train') + floor),
                 ('FID against the held-out digits', series('fid_held_out')),
                 ('classifier error (1 - accuracy)', series('accuracy', lambda v: 1 - v))],
                'NFE', 'mean over seeds')
    floor_mean, floor_half = mean_and_half_width(record['floor'])
    pooled = table(['method'] + [f'NFE {nfe}' for nfe in nfes],
                   [[name] + [_pooled_cell(cells.get((name, nfe))) for nfe in nfes] for name in names])
    plan = record['plan']
    text = '\n\n'.join([
        '# The samplers ranked on the digits UNet',
        f'`python -m benchmarks.digits_ranking` on {record["machine"]}: {record.get("seconds", "?")} s. Network: the '
        f'preset `{record["network"]}` (benchmarks/results/digits_unet_training.md). Seeds {plan["seeds"]}, '
        f'{plan["per_seed"]} images each (image k asks for class k mod 10; every method starts from the same '
        'latents); entries are the mean over the seeds ± the half width of the 95 % Student\'s t interval.',
        'FIDs come from this package\'s Inception pipeline (NVIDIA\'s weights) on the images quantised as their PNGs, '
        f'against the 1437 training digits and the 360 held-out digits at 16x16. At {plan["per_seed"]} images an FID '
        'is dominated by its small-sample bias: the held-out digits themselves score '
        f'{floor_mean:.2f} ± {floor_half:.2f} against the training digits at that size (the floor). The classifier '
        '(logistic regression on the 8x8 training digits, applied to images averaged down to 8x8) is right on '
        f'{record["classifier_held_out_accuracy"]:.3f} of the held-out digits.',
        '![FID and classifier error against NFE](digits_ranking.png)',
        '## FID against the training digits', _cell_table(record, 'fid_train', lambda v: f'{v:.2f}'),
        '## FID against the held-out digits', _cell_table(record, 'fid_held_out', lambda v: f'{v:.2f}'),
        '## Classifier accuracy for the asked class', _cell_table(record, 'accuracy', lambda v: f'{v:.3f}'),
        f'## Pooled FID ({len(plan["seeds"]) * plan["per_seed"]} images; training / held-out reference)', pooled,
        '## Where the default loses (beyond both intervals)', _losses_of_default(record), _nfe_note(record)])
    with open(os.path.join(out, 'digits_ranking.md'), 'w', encoding='utf-8') as file:
        file.write(text + '\n')


if __name__ == '__main__':
    main()
