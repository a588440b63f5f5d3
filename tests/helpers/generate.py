"""Helpers of the generate tests: tiny network pickles, CLI runners, an independent restatement of NVlabs'
generate.py pipeline, and folder snapshots."""

import io
import math
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import PIL.Image
import torch
from click.testing import CliRunner

from helpers.nets import TinyNonlinearNet

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(TESTS_DIR)


def tiny_net_pickle(path, **kwargs):
    """Pickle dict(ema=TinyNonlinearNet(float32 inside, like NVlabs nets)) as a snapshot; loads only with
    --trust-pickle-code (its class is not an EDM class) and with tests/ importable."""
    net = TinyNonlinearNet(dtype=torch.float32, **kwargs)
    with open(path, 'wb') as f:
        pickle.dump(dict(ema=net), f)
    return str(path)


def edm_net_pickle(path, resolution=16, label_dim=4, seed=0):
    """An NVlabs-format snapshot dict(ema=EDMPrecond(SongUNet DDPM++, tiny)) with all weights drawn at scale 0.2
    (NVlabs' zero-init output layers would hide the float32 conv arithmetic); loads in safe mode."""
    from edm_bdia.networks import EDMPrecond
    torch.manual_seed(seed)
    net = EDMPrecond(img_resolution=resolution, img_channels=3, label_dim=label_dim, model_type='SongUNet',
                     model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[resolution // 2],
                     embedding_type='positional', encoder_type='standard', decoder_type='standard',
                     channel_mult_noise=1, resample_filter=[1, 1])
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn_like(param) * 0.2)
    net.eval().requires_grad_(False)
    with open(path, 'wb') as f:
        pickle.dump(dict(ema=net), f)
    return str(path)


def run_cli(args):
    """Run the generate command in this process; returns click's Result."""
    from edm_bdia.cli.generate import main
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def subprocess_env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_DIR, TESTS_DIR, os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.update(extra)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID', 'SLURM_NTASKS',
                 'SLURM_LOCALID'):
        if name not in extra:
            env.pop(name, None)
    return env


def generate_command(*args):
    return [sys.executable, '-m', 'edm_bdia', 'generate', *map(str, args)]


def torchrun_command(nproc, *args, extra=()):
    return [sys.executable, '-m', 'torch.distributed.run', *extra, f'--nproc_per_node={nproc}', '-m',
            'edm_bdia', 'generate', *map(str, args)]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(command, timeout=120, cwd=None, **env):
    return subprocess.run(command, cwd=cwd, env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=timeout)


def killed_writer_temp_name(name):
    """The name of a temporary file for `name` as left behind by a killed writer on this host (its pid is gone)."""
    from edm_bdia.files import atomic
    finished = subprocess.Popen([sys.executable, '-c', ''])
    finished.wait()
    return f'.{name}.{atomic._HOST}.{finished.pid}.1{atomic.TEMP_SUFFIX}'


def folder_bytes(folder, suffix=''):
    """{relative path: file bytes} for every file under `folder` whose name ends with `suffix`."""
    files = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith(suffix):
                path = os.path.join(root, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, folder)] = f.read()
    return files


def pngs(folder):
    """The PNGs only; safe while a run is writing, since a temporary file may be renamed away after the listing."""
    return folder_bytes(folder, suffix='.png')


# ---- independent restatement of NVlabs generate.py (docs/generation.md), one seed at a time -------------

def nvlabs_latents_and_label(net, seed):
    """One sample's generator: float32 latents [C, H, W], then an int64 label if the net is conditional."""
    generator = torch.Generator().manual_seed(seed % 2 ** 32)
    latents = torch.randn([net.img_channels, net.img_resolution, net.img_resolution], generator=generator)
    label = torch.randint(net.label_dim, size=[], generator=generator) if net.label_dim else None
    return generator, latents, label


def nvlabs_algorithm2(net, latents, labels, generator, num_steps, sigma_min=0.002, sigma_max=80, rho=7,
                      S_churn=0, S_min=0, S_max=float('inf'), S_noise=1):
    """EDM Algorithm 2 exactly as NVlabs' edm_sampler orders its float64 operations (batch of one)."""
    sigma_min, sigma_max = max(sigma_min, net.sigma_min), min(sigma_max, net.sigma_max)
    i = torch.arange(num_steps, dtype=torch.float64)
    t = (sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t = torch.cat([net.round_sigma(t), torch.zeros_like(t[:1])])
    x = latents.to(torch.float64) * t[0]
    for k in range(num_steps):
        t_cur, t_next = t[k], t[k + 1]
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0
        t_hat = net.round_sigma(t_cur + gamma * t_cur)
        eps = torch.randn(x.shape[1:], dtype=torch.float64, generator=generator)[None]
        x_hat = x + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * eps
        d = (x_hat - net(x_hat, t_hat, labels).to(torch.float64)) / t_hat
        x = x_hat + (t_next - t_hat) * d
        if k < num_steps - 1:
            d_next = (x - net(x, t_next, labels).to(torch.float64)) / t_next
            x = x_hat + (t_next - t_hat) * (0.5 * d + 0.5 * d_next)
    return x


def nvlabs_png_bytes(image_float):
    """NVlabs' saving: (x * 127.5 + 128).clip(0, 255) -> uint8 -> HWC -> PIL ('L' or 'RGB') -> PNG."""
    array = (image_float * 127.5 + 128).clip(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    image = PIL.Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def nvlabs_reference_png(net, seed, num_steps, class_idx=None, **sampler_kwargs):
    generator, latents, label = nvlabs_latents_and_label(net, seed)
    labels = None
    if label is not None:
        labels = torch.eye(net.label_dim)[label][None]
        if class_idx is not None:
            labels = torch.zeros_like(labels)
            labels[:, class_idx] = 1
    with torch.no_grad():
        return nvlabs_png_bytes(nvlabs_algorithm2(net, latents[None], labels, generator, num_steps,
                                                  **sampler_kwargs))


def read_npz(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
