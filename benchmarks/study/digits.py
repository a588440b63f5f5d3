"""A small class-conditional EDM denoiser trained here on scikit-learn's bundled 8x8 digits (offline, CPU, minutes).

- Data: `sklearn.datasets.load_digits()` (1797 images, 16 grey levels) scaled to [-1, 1], shape [1, 8, 8]; every
  fifth image is held out (`held_out` in the returned split), the rest train.
- Network: EDM preconditioning (Karras et al. 2022, Table 1: c_skip, c_out, c_in, c_noise = ln(sigma) / 4 with
  sigma_data = 0.5) around an MLP F(c_in x, Fourier(c_noise), one-hot class); evaluated in float64, with the NVlabs
  interface (`img_resolution`, `img_channels`, `label_dim`, `sigma_min`, `sigma_max`, `round_sigma`).
- Training: EDM's loss (eq. 2 with ln(sigma) ~ N(P_mean, P_std^2) and weight lambda = (sigma^2 + sigma_data^2) /
  (sigma sigma_data)^2), Adam, cosine learning-rate decay, EMA of the weights, dropout 0.1; single-threaded float32
  with fixed seeds, so the same weights come out on every run of the same torch build. Without dropout a wider MLP
  memorizes the 1437 training digits (held-out loss 0.80 against 0.55 with it), and its probability-flow ODE then
  carries held-out digits to latents with std ~30 instead of ~1: a solver study needs a net that generalizes.
- A digit classifier (scikit-learn logistic regression on the training images) judges class-conditional samples.

The trained weights are cached outside git ($EDM_BDIA_BENCH_CACHE, default ~/.cache/edm_bdia/bench), keyed by the
training settings. `python -m benchmarks.digits_net` trains (or loads) the net and prints its held-out loss.
Needs the `bench` extra (scikit-learn).
"""

import hashlib
import json
import math
import os
import time

import numpy as np
import torch

SIGMA_DATA = 0.5
FULL = dict(hidden=256, depth=3, fourier=16, dropout=0.1, iterations=6000, batch=256, lr=2e-3, ema=0.999, p_mean=-1.2,
            p_std=1.2, seed=0)
QUICK = dict(FULL, iterations=300)


def cache_dir():
    return os.environ.get('EDM_BDIA_BENCH_CACHE', os.path.join(os.path.expanduser('~'), '.cache', 'edm_bdia', 'bench'))


def load_digits_split():
    """(train images, train labels, held-out images, held-out labels): float64 [n, 1, 8, 8] in [-1, 1], int64 [n]."""
    from sklearn.datasets import load_digits  # the `bench` extra
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float64)[:, None] / 8 - 1  # grey levels 0..16 -> [-1, 1]
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    held = torch.arange(len(images)) % 5 == 0
    return images[~held], labels[~held], images[held], labels[held]


class DigitsDenoiser(torch.nn.Module):
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise, class) (Karras et al. 2022, eq. 7), NVlabs interface."""

    img_resolution, img_channels, label_dim = 8, 1, 10
    sigma_min, sigma_max = 0, float('inf')

    def __init__(self, hidden, depth, fourier, dropout=0.0, seed=0, **_):
        super().__init__()
        self.dropout = dropout
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer('frequencies', torch.randn(fourier, generator=gen) * 2 * math.pi)
        widths = [64 + 2 * fourier + self.label_dim] + [hidden] * depth + [64]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)

    def forward(self, x, sigma, class_labels=None):
        dtype = self.layers[0].weight.dtype
        batch = x.shape[0]
        x = x.to(dtype).reshape(batch, 64)
        sigma = torch.as_tensor(sigma, dtype=dtype, device=x.device).reshape(-1, 1).expand(batch, 1)
        labels = torch.zeros(batch, self.label_dim, dtype=dtype) if class_labels is None else \
            class_labels.to(dtype).reshape(-1, self.label_dim).expand(batch, -1)
        # EDM preconditioning (Karras et al. 2022, Table 1)
        c_skip = SIGMA_DATA ** 2 / (sigma ** 2 + SIGMA_DATA ** 2)
        c_out = sigma * SIGMA_DATA / (sigma ** 2 + SIGMA_DATA ** 2).sqrt()
        c_in = 1 / (SIGMA_DATA ** 2 + sigma ** 2).sqrt()
        c_noise = sigma.log() / 4
        phases = c_noise * self.frequencies.to(dtype)[None]
        h = torch.cat([c_in * x, phases.cos(), phases.sin(), labels], dim=1)
        for layer in self.layers[:-1]:
            h = torch.nn.functional.dropout(torch.nn.functional.silu(layer(h)), self.dropout, self.training)
        return (c_skip * x + c_out * self.layers[-1](h)).reshape(batch, 1, 8, 8)


def edm_loss(net, images, labels, p_mean, p_std, generator):
    """EDM's training loss (Karras et al. 2022, eq. 2 with Table 1's sigma distribution and weighting)."""
    sigma = (torch.randn(len(images), 1, 1, 1, generator=generator) * p_std + p_mean).exp()
    weight = (sigma ** 2 + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
    noisy = images + sigma * torch.randn(images.shape, generator=generator)
    return (weight * (net(noisy, sigma.reshape(-1), labels) - images) ** 2).mean()


def train(settings, log=print):
    """Train a DigitsDenoiser with `settings` (FULL or QUICK); returns the EMA network in float64, eval mode."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float32 reductions, hence the same weights, on every machine
    try:
        train_x, train_y, held_x, held_y = load_digits_split()
        images, onehot = train_x.float(), torch.nn.functional.one_hot(train_y, 10).float()
        torch.manual_seed(settings['seed'])
        net = DigitsDenoiser(**settings)
        ema = DigitsDenoiser(**settings)
        ema.load_state_dict(net.state_dict())
        optimizer = torch.optim.Adam(net.parameters(), lr=settings['lr'])
        gen = torch.Generator().manual_seed(settings['seed'] + 1)
        start = time.time()
        for step in range(settings['iterations']):
            for group in optimizer.param_groups:  # cosine decay to zero
                group['lr'] = settings['lr'] * 0.5 * (1 + math.cos(math.pi * step / settings['iterations']))
            pick = torch.randint(len(images), (settings['batch'],), generator=gen)
            loss = edm_loss(net, images[pick], onehot[pick], settings['p_mean'], settings['p_std'], gen)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), net.parameters()):
                    p_ema.lerp_(p, 1 - settings['ema'])
            if log and (step + 1) % 2000 == 0:
                log(f'  digits net: step {step + 1}/{settings["iterations"]}, loss {loss.item():.4f}, '
                    f'{time.time() - start:.0f} s')
    finally:
        torch.set_num_threads(threads)
    return ema.double().eval().requires_grad_(False)


def load_or_train(quick=False, log=print):
    """The trained digits denoiser (float64), from the cache when its settings were trained before."""
    settings = QUICK if quick else FULL
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f'digits-edm-{key}.pt')
    net = DigitsDenoiser(**settings).double()
    if os.path.isfile(path):
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval().requires_grad_(False)
    net = train(settings, log=log)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f'{path}.tmp{os.getpid()}'
    torch.save(net.state_dict(), temp)
    os.replace(temp, path)
    return net


def held_out_loss(net, seed=0, repeats=8):
    """EDM loss on the held-out digits (float64, fixed noise draws): lower is better; for reports."""
    _, _, held_x, held_y = load_digits_split()
    gen = torch.Generator().manual_seed(seed)
    onehot = torch.nn.functional.one_hot(held_y, 10).double()
    with torch.no_grad():
        return float(np.mean([edm_loss(net, held_x, onehot, FULL['p_mean'], FULL['p_std'], gen).item()
                              for _ in range(repeats)]))


def digit_classifier():
    """Logistic regression fitted on the training digits; returns predict(images [n, 1, 8, 8]) -> int64 [n]."""
    from sklearn.linear_model import LogisticRegression
    train_x, train_y, _, _ = load_digits_split()
    model = LogisticRegression(max_iter=5000, C=0.5).fit(train_x.reshape(len(train_x), -1).numpy(), train_y.numpy())

    def predict(images):
        return torch.as_tensor(model.predict(images.reshape(len(images), -1).double().numpy()))
    return predict

