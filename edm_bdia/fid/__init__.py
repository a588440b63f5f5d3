"""FID with NVIDIA's Inception-v3 detector (EDM-identical numbers) and FD_DINOv2 with DINOv2 ViT-L/14 (EDM2's second
metric), offline-capable, sharded, both in one pass over the images.

Modules: ``metrics`` (the metric names and their detectors), ``inception`` (the network), ``resize`` (TF1-legacy
front end), ``torchscript_weights`` and ``detector`` (finding and loading Inception weights), ``dinov2`` (the ViT),
``dinov2_resize`` (its front end), ``dinov2_detector`` (front end + ViT, precision), ``dinov2_weights`` (finding and
loading Meta's weights without running code), ``named_weights`` (a weights file the user names), ``datasets`` (image
sources), ``stats`` (float64 sums, all-reduce), ``pipeline`` (uint8 images -> every detector -> statistics ->
distances: the one pipeline of ``fid.py``, ``calculate_metrics.py`` and ``generate.py --fid-ref``), ``extract`` (an
image source through the pipeline, sharded), ``frechet`` (the distance), ``refs`` (reference statistics), ``errors``
(one-line errors). The command lines are edm_bdia.cli.fid and edm_bdia.cli.calculate_metrics; docs/fid.md explains
the maths.
"""
