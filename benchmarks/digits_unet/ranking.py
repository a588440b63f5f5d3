"""The samplers ranked on the digits UNet: FID against the training and the held-out digits and the classifier's
accuracy for the asked class, at equal network evaluations (NFE), over several seeds.

The methods are the solver study's (benchmarks/study/methods.py): Euler, Heun (EDM), DPM-Solver++(2M) through the
k-diffusion interop, BDIA on the Heun base at gamma 0.5, 0.9 and 1, O-BELM and the library's default invertible
sampler. Each seed draws its own latents; every method and NFE of a seed starts from the same latents and asks for
the same classes (image k asks for class k mod 10), so the methods are compared on paired samples.
"""

import math
import time
import warnings

import torch

from edm_bdia.sample import DEFAULT_GAMMA

from ..common.metered_net import MeteredNet
from ..study.methods import DEFAULT, OBELM, bdia, dpmpp_2m, euler, heun

NFES = [5, 9, 17, 35, 79]
SEEDS = [0, 1, 2]
PER_SEED = 64
QUICK = dict(nfes=[5], seeds=[0, 1], per_seed=10, reference_images=40)  # references: the first 40 of each split
FULL = dict(nfes=NFES, seeds=SEEDS, per_seed=PER_SEED, reference_images=None)
# Student's t quantiles (two-sided 95 %) by degrees of freedom, for the confidence intervals over seeds
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def methods():
    """The ranked samplers (DPM-Solver++(2M) only when k-diffusion is installed)."""
    ranked = [euler(), heun(), dpmpp_2m(), *(bdia('heun', gamma) for gamma in (0.5, 0.9, 1.0)),
              bdia('euler', 'obelm', label=OBELM), bdia('euler', DEFAULT_GAMMA, label=DEFAULT)]
    return [method for method in ranked if method is not None]


def seed_inputs(seed, count, net):
    """(latents float64 [count, C, R, R], one-hot float64 labels, class indices) of one seed."""
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn([count, net.img_channels, net.img_resolution, net.img_resolution], dtype=torch.float64,
                          generator=generator)
    classes = torch.arange(count) % net.label_dim
    return latents, torch.nn.functional.one_hot(classes, net.label_dim).double(), classes


def mean_and_half_width(values):
    """(mean, half width of the 95 % Student's t interval) of per-seed values."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T_975[n - 1] * sd / math.sqrt(n)


def rank_cell(net, method, nfe, seeds, per_seed, digit_features, references, classify):
    """One method at one NFE over all seeds: per-seed FIDs against `references` (FidReference by name, 'train'
    and 'held_out') and accuracies, the pooled FIDs over all seeds' images, the NFE counted per image and the
    seconds spent."""
    metered = MeteredNet(net)
    num_steps = method.steps(nfe)
    per_seed_rows, all_features, start = [], [], time.time()
    for seed in seeds:
        latents, labels, classes = seed_inputs(seed, per_seed, net)
        with warnings.catch_warnings():  # BDIA's instability warnings at few steps: the scores show the effect
            warnings.simplefilter('ignore', UserWarning)
            images, _ = method.sample(metered, latents, labels, num_steps)
        features = digit_features.features(images.float())
        all_features.append(features)
        per_seed_rows.append(dict(seed=seed, fid_train=references['train'].fid(features),
                                  fid_held_out=references['held_out'].fid(features),
                                  accuracy=(classify(images) == classes).double().mean().item()))
    pooled = torch.cat(all_features)
    return dict(method=method.name, nfe=nfe, num_steps=num_steps, nfe_counted=metered.calls / len(seeds),
                seconds=round(time.time() - start, 1), seeds=per_seed_rows,
                pooled_fid_train=references['train'].fid(pooled),
                pooled_fid_held_out=references['held_out'].fid(pooled))
