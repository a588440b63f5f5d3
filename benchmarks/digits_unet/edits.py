"""Real inversions and edits of held-out digits through the command lines (`python -m edm_bdia invert` and
`edit`), and DDIM-style Euler inversion beside them (benchmarks/study/methods.py: the Euler solver run backwards
from the same start, not exact).

The held-out digits go in as a generate.py-style .npz (uint8 images with their labels), so the command lines read
exactly the pixels measured here. Each edit asks for the next class, (label + 1) mod 10; the `edit` command takes
one target class per run, so each strength runs once per target class on the digits that ask for it.
"""

import os
import subprocess
import sys

import numpy as np
import torch

from edm_bdia.files.images import read_png, save_npz, save_png, to_hwc_arrays, to_uint8
from edm_bdia.sample import karras_sigmas

from ..common.paths import REPO_ROOT
from ..study.methods import euler
from .model import PRESET

STRENGTHS = (0.3, 0.6, 1.0)
STEPS = 18


def held_out_selection(held_x, held_y, per_class):
    """Indices of the first `per_class` held-out digits of each class, ordered class 0..9, then 0..9 again."""
    order = [torch.nonzero(held_y == digit).flatten()[:per_class] for digit in range(10)]
    return torch.stack(order, dim=1).flatten()


def target_classes(labels):
    return (labels + 1) % 10


def write_images_npz(path, images, labels):
    """Float images in [-1, 1] as a generate.py .npz (uint8 NHWC, int64 labels); returns the uint8 NCHW images."""
    pixels = to_uint8(images)
    save_npz(path, to_hwc_arrays(pixels), labels.numpy())
    return pixels


def run_cli(*args):
    """`python -m edm_bdia ARGS` on one thread, from the repository root; its error output on failure."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-m', 'edm_bdia', *map(str, args)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f'python -m edm_bdia {" ".join(map(str, args))} failed:\n{result.stderr}')


def read_pngs(folder, count):
    """uint8 NCHW images `000000.png` ... of `folder`, and their raw bytes."""
    paths = [os.path.join(folder, f'{index:06d}.png') for index in range(count)]
    images = torch.stack([torch.from_numpy(read_png(path).copy()).permute(2, 0, 1) for path in paths])
    contents = []
    for path in paths:
        with open(path, 'rb') as file:
            contents.append(file.read())
    return images, contents


def png_bytes(pixels, folder):
    """The bytes of the PNGs the package writes for uint8 NCHW `pixels` (written to `folder`)."""
    os.makedirs(folder, exist_ok=True)
    contents = []
    for index, array in enumerate(to_hwc_arrays(pixels)):
        path = os.path.join(folder, f'{index:06d}.png')
        save_png(array, path)
        with open(path, 'rb') as file:
            contents.append(file.read())
    return contents


def bdia_round_trip(work, images_npz, count):
    """Invert with `python -m edm_bdia invert`, regenerate with `edit` (no class): the latents x_0 / t_0 and the
    regenerated (uint8 NCHW images, PNG bytes)."""
    latents = os.path.join(work, 'latents.npz')
    run_cli('invert', f'--network={PRESET}', f'--images={images_npz}', f'--out={latents}', f'--steps={STEPS}')
    back = os.path.join(work, 'back')
    run_cli('edit', f'--network={PRESET}', f'--latents={latents}', f'--outdir={back}')
    with np.load(latents, allow_pickle=False) as data:
        noise = torch.as_tensor(data['latents'])
    images, contents = read_pngs(back, count)
    return noise, images[:, :1], contents


def bdia_edits(work, pixels, labels, strength):
    """Edited uint8 images (in the order of `labels`) at `strength`, one `edit --images` run per target class."""
    targets = target_classes(labels)
    edited = torch.zeros_like(pixels)
    for target in targets.unique().tolist():
        rows = torch.nonzero(targets == target).flatten()
        source = os.path.join(work, f'to-{target}.npz')
        save_npz(source, to_hwc_arrays(pixels[rows]), labels[rows].numpy())
        outdir = os.path.join(work, f'strength-{strength:g}-to-{target}')
        run_cli('edit', f'--network={PRESET}', f'--images={source}', f'--class={target}',
                f'--strength={strength:g}', f'--steps={STEPS}', f'--outdir={outdir}')
        edited[rows] = read_pngs(outdir, len(rows))[0][:, :pixels.shape[1]]
    return edited


def euler_round_trip_and_edit(net, pixels, labels):
    """DDIM-style Euler inversion of the images under their class, then the Euler sampler from those latents
    under their class (reconstruction) and under the next class (edit, strength 1): uint8 images, and the
    latents x_0 / t_0."""
    method = euler()
    images = pixels.double() / 127.5 - 1
    onehot = torch.nn.functional.one_hot(labels, 10).double()
    start = method.encode(net, images, onehot, STEPS)
    back = method.regenerate(net, start, onehot, STEPS)
    edited = method.regenerate(net, start, torch.nn.functional.one_hot(target_classes(labels), 10).double(), STEPS)
    return to_uint8(back), to_uint8(edited), start[0] / karras_sigmas(STEPS)[0]
