"""Speed of the FID pipeline's two parts: Inception feature extraction and the Frechet distance."""

import time

import numpy as np
import torch

from edm_bdia.fid.frechet import METHODS, frechet_distance


def extraction_rate(detector, resolution, num_images, batch, device):
    """Images per second through the detector (uint8 in, features out), after one warm-up batch."""
    images = torch.randint(0, 256, (batch, 3, resolution, resolution), dtype=torch.uint8, device=device)
    with torch.no_grad():
        detector(images, return_features=True)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start, done = time.perf_counter(), 0
        while done < num_images:
            detector(images, return_features=True)
            done += batch
        if device.type == 'cuda':
            torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def frechet_seconds(dim=2048, seed=0):
    """Seconds per method on Wishart statistics of 2*dim samples."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal((2, dim, 2 * dim))
    stats = (rng.standard_normal(dim), x1 @ x1.T / (2 * dim), rng.standard_normal(dim), x2 @ x2.T / (2 * dim))
    results = {}
    for method in METHODS:
        start = time.perf_counter()
        fid = frechet_distance(*stats, method=method)
        results[method] = (time.perf_counter() - start, fid)
    return results
