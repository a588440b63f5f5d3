"""Training: EDM's loss, Adam with a warm-up and cosine decay, an EMA of the weights, single-threaded and seeded.

One thread and fixed seeds give the same float32 arithmetic, hence the same weights, on every run of the same torch
build on the same CPU kind (other instruction sets may round differently). The loss curve records the mean training
loss over each `log_every` iterations and, at the same points, the EMA network's EDM loss on the held-out digits
(fixed noise draws, so the points are comparable).
"""

import copy
import math
import time

import torch

from ..study.digits import edm_loss
from .data import upscaled_split
from .model import build_network

SETTINGS = dict(iterations=7000, batch=64, lr=1e-3, warmup=200, ema=0.999, p_mean=-1.2, p_std=1.2, seed=0,
                log_every=250)
QUICK = dict(SETTINGS, iterations=20, warmup=5, log_every=10)


def learning_rate(settings, step):
    """Linear warm-up over `warmup` iterations, then cosine decay to zero at `iterations`."""
    if step < settings['warmup']:
        return settings['lr'] * (step + 1) / settings['warmup']
    progress = (step - settings['warmup']) / max(settings['iterations'] - settings['warmup'], 1)
    return settings['lr'] * 0.5 * (1 + math.cos(math.pi * progress))


def ema_decay(settings, step):
    """The EMA's decay, ramped up as (1 + step) / (10 + step) so that early weights are forgotten quickly."""
    return min(settings['ema'], (1 + step) / (10 + step))


def held_out_loss(net, held_x, held_y, settings, repeats=4):
    """EDM loss of `net` on the held-out digits with noise drawn from a fixed seed."""
    generator = torch.Generator().manual_seed(12345)
    onehot = torch.nn.functional.one_hot(held_y, 10).float()
    with torch.no_grad():
        return sum(edm_loss(net, held_x, onehot, settings['p_mean'], settings['p_std'], generator).item()
                   for _ in range(repeats)) / repeats


def train(settings=SETTINGS, log=print):
    """(EMA network in eval mode, loss curve as a list of dicts, seconds taken). Run it on one thread
    (`torch.set_num_threads(1)`, as the entry point does) for the same weights every time."""
    train_x, train_y, held_x, held_y = upscaled_split()
    onehot = torch.nn.functional.one_hot(train_y, 10).float()
    net = build_network(settings['seed']).train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings['lr'])
    generator = torch.Generator().manual_seed(settings['seed'] + 1)
    curve, window, start = [], [], time.time()
    for step in range(settings['iterations']):
        for group in optimizer.param_groups:
            group['lr'] = learning_rate(settings, step)
        pick = torch.randint(len(train_x), (settings['batch'],), generator=generator)
        loss = edm_loss(net, train_x[pick], onehot[pick], settings['p_mean'], settings['p_std'], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay = ema_decay(settings, step)
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), net.parameters()):
                p_ema.lerp_(p, 1 - decay)
        window.append(loss.item())
        if (step + 1) % settings['log_every'] == 0 or step + 1 == settings['iterations']:
            point = dict(iteration=step + 1, train_loss=sum(window) / len(window),
                         held_out_loss=held_out_loss(ema, held_x, held_y, settings),
                         seconds=round(time.time() - start, 1))
            curve.append(point)
            window = []
            if log:
                log(f'iteration {point["iteration"]}/{settings["iterations"]}: train loss '
                    f'{point["train_loss"]:.4f}, EMA held-out loss {point["held_out_loss"]:.4f}, '
                    f'{point["seconds"]:.0f} s')
    return ema, curve, time.time() - start
