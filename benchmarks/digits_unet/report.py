"""What every digits-UNet report carries: the machine it ran on (CPU model, instruction sets, threads, torch) and
the JSON record beside the markdown."""

import json
import os

import torch

from edm_bdia.speed.hardware import cpu_info

from ..common.timing import describe_machine


def machine_line():
    """CPU model, threads and torch versions, plus the instruction-set class oneDNN may use and its cap."""
    info = cpu_info()
    isa = f'ISA {info.isa_class}' + (f' (oneDNN capped at {info.onednn_cap})' if info.onednn_cap else '')
    return f'{describe_machine(torch.device("cpu"))}; {isa}; CPU kind {info.kind}'


def write_json(path, record):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as file:
        json.dump(record, file, indent=1)
        file.write('\n')
