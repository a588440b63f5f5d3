"""FID with NVIDIA's Inception-v3 detector, EDM-identical numbers, offline-capable and sharded.

Modules: ``inception`` (the network), ``resize`` (TF1-legacy front end), ``torchscript_weights`` and ``detector``
(finding and loading weights), ``datasets`` (image sources), ``stats`` (float64 sums, all-reduce), ``extract``
(images -> statistics), ``frechet`` (the distance), ``refs`` (reference statistics), ``errors`` (one-line errors), ``cli``
(``calc``/``ref``/``refs``).
"""
