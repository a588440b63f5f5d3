"""FID with NVIDIA's Inception-v3 detector, EDM-identical numbers, offline-capable and sharded.

Modules: ``inception`` (the network), ``resize`` (TF1-legacy front end), ``torchscript_weights`` and ``detector``
(finding and loading weights), ``datasets`` (image sources), ``stats`` (float64 sums, all-reduce), ``pipeline``
(uint8 images -> statistics -> distance: the one FID pipeline of ``fid.py`` and ``generate.py --fid-ref``),
``extract`` (an image source through the pipeline, sharded), ``frechet`` (the distance), ``refs`` (reference
statistics), ``errors`` (one-line errors). The command line is edm_bdia.cli.fid; docs/fid.md explains the maths.
"""
