"""The default invertible sampler of every BDIA function and command, set here only (torch-free, so that command
lines parse `--gamma` before torch loads). gammas.py implements the rules; docs/samplers.md explains the choice."""

GAMMA_RULE_NAMES = ('obelm-adaptive', 'obelm', 'obelm-floor')
DEFAULT_GAMMA = 'obelm-adaptive'
DEFAULT_BASE = 'euler'
