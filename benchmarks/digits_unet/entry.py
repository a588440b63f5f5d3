"""What the digits entry points share: the `--quick` / `--out` command line, and one thread for the run."""

import argparse

import torch


def entry_arguments(doc, argv, quick_help, out_default, out_help):
    """Parse `--quick` and `--out` for the entry point documented by `doc`, and run the process on one thread
    (the machines are shared; one thread also fixes the float32 reduction order)."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help=quick_help)
    parser.add_argument('--out', default=out_default, help=out_help)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    return args
