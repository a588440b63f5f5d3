"""The digits UNet: a small EDM-preconditioned DDPM++ SongUNet trained here on scikit-learn's 8x8 digits upscaled
to 16x16, shipped as the built-in preset `digits-16x16-cond`, and the studies run on it (docs/checkpoints.md,
'The digits UNet').

Modules: `data` (the upscaled split and the digit classifier on it), `model` (the network's settings), `train`
(EDM's loss, Adam, EMA, the loss curve), `snapshot` (the NVlabs pickle layout), `features` (Inception features and
FIDs against fixed references), `ranking` (the samplers at equal NFE over seeds), `edits` (inversion and editing
through the command lines, Euler inversion beside them), `entry` and `report` (what the entry points share).
Entry points: `python -m benchmarks.train_digits_unet`, `python -m benchmarks.digits_ranking`,
`python -m benchmarks.digits_edits`.
"""
