"""Where the benchmarks live, and how one benchmark starts another as a fresh process."""

import os
import sys

BENCHMARKS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(BENCHMARKS_DIR)
RESULTS_DIR = os.path.join(BENCHMARKS_DIR, 'results')


def module_command(name, *args):
    """The command line of `python -m benchmarks.<name> ARGS...`; run it with cwd=REPO_ROOT, where the package is."""
    return [sys.executable, '-m', f'benchmarks.{name}', *map(str, args)]
