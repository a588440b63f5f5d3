"""Real inversions and edits of held-out digits with the digits UNet (preset `digits-16x16-cond`) through
`python -m edm_bdia invert` and `edit`, against DDIM-style Euler inversion (benchmarks/digits_unet/edits.py).

Five held-out digits of each class: inverted under their class with the default invertible sampler (18 steps),
regenerated (are the PNG bytes those of the originals?), edited to the next class at strengths 0.3, 0.6 and 1;
Euler inverted and regenerated (reconstruction) and regenerated under the next class (edit at strength 1). Reports
the reconstruction error, the latents' spread, the classifier's verdict, and a picture (one digit per class: rows
originals, reconstructions, edits per strength). Writes benchmarks/results/digits_edits.{md,json,png}.

    nice -n 10 python -m benchmarks.digits_edits            # a few minutes on one core
    python -m benchmarks.digits_edits --quick --out=/tmp/e  # one digit per class, strength 1 only
"""

import os
import tempfile
import time

import torch
from PIL import Image, ImageDraw

import edm_bdia

from .common.markdown import table
from .common.paths import RESULTS_DIR
from .digits_unet.data import image_classifier, upscaled_split
from .digits_unet.entry import entry_arguments
from .digits_unet.edits import (STEPS, STRENGTHS, bdia_edits, bdia_round_trip, euler_round_trip_and_edit,
                                held_out_selection, png_bytes, target_classes, write_images_npz)
from .digits_unet.model import PRESET
from .digits_unet.report import machine_line, write_json

CELL, LABEL_WIDTH = 48, 150


def main(argv=None):
    args = entry_arguments(__doc__, argv, 'one digit per class, strength 1 only (smoke test)', RESULTS_DIR,
                           'output folder (default: benchmarks/results)')
    per_class, strengths = (1, (1.0,)) if args.quick else (5, STRENGTHS)
    start = time.time()
    net = edm_bdia.load_network(PRESET)
    classify = image_classifier()
    _, _, held_x, held_y = upscaled_split()
    chosen = held_out_selection(held_x, held_y, per_class)
    labels, targets = held_y[chosen], target_classes(held_y[chosen])
    work = tempfile.mkdtemp(prefix='digits_edits_')
    pixels = write_images_npz(os.path.join(work, 'held.npz'), held_x[chosen], labels)
    original_pngs = png_bytes(pixels, os.path.join(work, 'originals'))
    noise, back, back_pngs = bdia_round_trip(work, os.path.join(work, 'held.npz'), len(labels))
    edits = {strength: bdia_edits(work, pixels, labels, strength) for strength in strengths}
    euler_back, euler_edit, euler_noise = euler_round_trip_and_edit(net, pixels, labels)

    def verdict(images, wanted):
        return (classify(images.double() / 127.5 - 1) == wanted).double().mean().item()

    record = dict(machine=machine_line(), network=PRESET, steps=STEPS, digits=len(labels), work=work,
                  originals_classified=verdict(pixels, labels),
                  bdia=dict(png_identical=sum(a == b for a, b in zip(original_pngs, back_pngs)),
                            **_reconstruction(pixels, back, noise), reconstruction_classified=verdict(back, labels),
                            edits={f'{s:g}': dict(as_target=verdict(edits[s], targets),
                                                  as_source=verdict(edits[s], labels)) for s in strengths}),
                  euler=dict(**_reconstruction(pixels, euler_back, euler_noise),
                             reconstruction_classified=verdict(euler_back, labels),
                             edits={'1': dict(as_target=verdict(euler_edit, targets),
                                              as_source=verdict(euler_edit, labels))}))
    record['seconds'] = round(time.time() - start)
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, 'digits_edits.json'), record)
    first = [int(torch.nonzero(labels == digit).flatten()[0]) for digit in range(10)]
    rows = [('originals', pixels), ('BDIA reconstruction', back), ('Euler (DDIM) rec.', euler_back)]
    rows += [(f'BDIA edit, strength {s:g}', edits[s]) for s in strengths] + [('Euler edit, strength 1', euler_edit)]
    _picture(os.path.join(args.out, 'digits_edits.png'), [(name, images[first]) for name, images in rows])
    _report(record, strengths, os.path.join(args.out, 'digits_edits.md'))
    print(open(os.path.join(args.out, 'digits_edits.md'), encoding='utf-8').read())


def _reconstruction(pixels, back, noise):
    difference = back.double() - pixels.double()
    return dict(max_abs_uint8=int(difference.abs().max()), rms=float((difference / 127.5).square().mean().sqrt()),
                exact_pixels=float((difference == 0).double().mean()), latent_std=float(noise.std()))


def _picture(path, rows):
    """One row per (name, uint8 images [10, 1, R, R]), pixels enlarged to CELL, names on the left."""
    canvas = Image.new('L', (LABEL_WIDTH + CELL * len(rows[0][1]), CELL * len(rows)), 255)
    draw = ImageDraw.Draw(canvas)
    for row, (name, images) in enumerate(rows):
        draw.text((4, row * CELL + CELL // 2 - 6), name, fill=0)
        for column, image in enumerate(images):
            tile = Image.fromarray(image[0].numpy()).resize((CELL, CELL), Image.NEAREST)
            canvas.paste(tile, (LABEL_WIDTH + column * CELL, row * CELL))
    canvas.save(path)


def _report(record, strengths, path):
    bdia, euler = record['bdia'], record['euler']
    reconstruction = table(
        ['inversion', 'PNG bytes identical', 'pixels exact', 'max error (uint8 levels)', 'RMS error ([-1, 1])',
         'latents std', 'classified as the original'],
        [[f'BDIA, `python -m edm_bdia invert` + `edit` ({record["steps"]} steps, default sampler)',
          f'{bdia["png_identical"]} / {record["digits"]}', f'{bdia["exact_pixels"]:.4f}', bdia['max_abs_uint8'],
          f'{bdia["rms"]:.2e}', f'{bdia["latent_std"]:.3f}', f'{bdia["reconstruction_classified"]:.2f}'],
         [f'Euler (DDIM) inversion and sampling ({record["steps"]} steps)', '-', f'{euler["exact_pixels"]:.4f}',
          euler['max_abs_uint8'], f'{euler["rms"]:.2e}', f'{euler["latent_std"]:.3f}',
          f'{euler["reconstruction_classified"]:.2f}']])
    edit_rows = [[f'BDIA, strength {s:g}', f'{bdia["edits"][f"{s:g}"]["as_target"]:.2f}',
                  f'{bdia["edits"][f"{s:g}"]["as_source"]:.2f}'] for s in strengths]
    edit_rows.append(['Euler (DDIM), strength 1', f'{euler["edits"]["1"]["as_target"]:.2f}',
                      f'{euler["edits"]["1"]["as_source"]:.2f}'])
    text = '\n\n'.join([
        '# Real inversions and edits of held-out digits',
        f'`python -m benchmarks.digits_edits` on {record["machine"]}: {record["seconds"]} s. Network: the preset '
        f'`{record["network"]}`; {record["digits"]} held-out digits (the same number of each class), which the '
        f'classifier reads correctly in {record["originals_classified"]:.2f} of cases.',
        '![rows: originals, reconstructions, edits per strength](digits_edits.png)',
        '## Reconstruction', reconstruction,
        '## Edits to the next class ((label + 1) mod 10): the classifier\'s verdict',
        table(['edit', 'read as the asked class', 'still read as the original class'], edit_rows)])
    with open(path, 'w', encoding='utf-8') as file:
        file.write(text + '\n')


if __name__ == '__main__':
    main()
