"""``fid.py calc`` / ``fid.py ref`` with NVlabs EDM's meaning and defaults, plus detector choice, JSON output,
registry names for --ref, loader workers and device choice. Works in one process or under torchrun.

The FID (or the JSON record) is the only thing written to stdout, by rank 0; progress goes to stderr.
"""

import json
import sys

import click

from edm_bdia.fid import refs
from edm_bdia.fid.datasets import open_images, select_indices
from edm_bdia.fid.detector import DEFAULT_DETECTOR, load_detector_with_info
from edm_bdia.fid.extract import compute_statistics
from edm_bdia.fid.frechet import METHODS, frechet_distance
from edm_bdia import distributed


def _log(message):
    if distributed.get_rank() == 0:
        print(message, file=sys.stderr, flush=True)


def _shared_options(command):
    """Options common to calc and ref."""
    options = [
        click.option('--batch', help='Maximum batch size per rank', metavar='INT', type=click.IntRange(min=1),
                     default=64, show_default=True),
        click.option('--detector', help=f'Detector weights: .pkl/.pt path, URL or {DEFAULT_DETECTOR}',
                     metavar='PATH|URL|NAME', default=DEFAULT_DETECTOR, show_default=True),
        click.option('--trust-pickle-code', help="Run the detector pickle's embedded code (as EDM does)",
                     is_flag=True),
        click.option('--workers', help='DataLoader worker processes per rank', metavar='INT',
                     type=click.IntRange(min=0), default=3, show_default=True),
        click.option('--device', help='auto, cpu, cuda or mps', metavar='STR', default='auto', show_default=True),
        click.option('--json', 'as_json', help='Print a JSON record instead of the bare number', is_flag=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _statistics(images, num, seed, batch, detector, trust_pickle_code, workers, device, before_extraction=None):
    """(mu, sigma, N, detector identity) for the selected images; collective over all ranks."""
    with distributed.rank_zero_first():
        net, info = load_detector_with_info(detector, device=device, trust_pickle_code=trust_pickle_code)

    def select():
        dataset = open_images(images)
        indices = select_indices(len(dataset), num, seed)
        if len(indices) < 2:
            raise click.ClickException(f'{images}: FID needs at least 2 images, found {len(indices)}')
        if before_extraction is not None:
            before_extraction()
        return dataset, indices

    dataset, indices = distributed.attempt(select)
    _log(f'Computing Inception statistics of {len(indices)} images from "{images}" '
         f'on {distributed.get_world_size()} rank(s)...')
    stats = compute_statistics(dataset, net, indices, batch_size=batch, workers=workers, device=device,
                               progress=True)
    mu, sigma = stats.mean_cov()
    return mu, sigma, len(indices), info


def _run(body):
    """Run a command body; any rank's failure becomes one 'Error: ...' line and exit status 1 on every rank."""
    try:
        body()
    except distributed.RankFailure as exc:
        raise click.ClickException(exc.message) from None
    except (ValueError, RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        distributed.shutdown()


@click.group()
def main():
    """Calculate Frechet Inception Distance (FID), EDM-compatible.

    \b
    Examples:
    # Reference statistics of a dataset
    edm-bdia-fid ref --data=datasets/cifar10-32x32.zip --dest=fid-refs/cifar10-32x32.npz
    # FID of 50k generated images against NVIDIA's published statistics
    edm-bdia-fid calc --images=fid-tmp --ref=cifar10-32x32
    torchrun --standalone --nproc_per_node=2 fid.py calc --images=fid-tmp --ref=cifar10-32x32
    """


@main.command()
@click.option('--images', 'image_path', help='Image folder, .zip or generate.py .npz', metavar='PATH|ZIP|NPZ',
              type=str, required=True)
@click.option('--ref', 'ref_source', help='Reference statistics: .npz/.pkl path, URL or registry name',
              metavar='NPZ|PKL|URL|NAME', type=str, required=True)
@click.option('--num', 'num_expected', help='Number of images to use', metavar='INT', type=click.IntRange(min=2),
              default=50000, show_default=True)
@click.option('--seed', help='Random seed for selecting the images', metavar='INT', type=int, default=0,
              show_default=True)
@click.option('--fd-method', help='How tr sqrt(S1 S2) is computed', type=click.Choice(METHODS), default='eigh',
              show_default=True)
@_shared_options
def calc(image_path, ref_source, num_expected, seed, fd_method, batch, detector, trust_pickle_code, workers, device,
         as_json):
    """Calculate FID for a given set of images."""
    def body():
        torch_device = distributed.init(device)
        reference = {}

        def load_reference():  # rank 0 only, like EDM; a failure stops every rank before extraction
            if distributed.get_rank() == 0:
                _log(f'Loading reference statistics from "{ref_source}"...')
                reference['stats'] = refs.load_reference(ref_source)

        mu, sigma, num, info = _statistics(image_path, num_expected, seed, batch, detector, trust_pickle_code,
                                           workers, torch_device, before_extraction=load_reference)
        if distributed.get_rank() != 0:
            return
        fid = frechet_distance(mu, sigma, *reference['stats'], method=fd_method)
        if as_json:
            print(json.dumps(dict(fid=fid, num_images=num, images=image_path, ref=ref_source, seed=seed,
                                  batch=batch, world_size=distributed.get_world_size(), fd_method=fd_method,
                                  device=str(torch_device), detector=info)))
        else:
            print(f'{fid:g}')
    _run(body)


@main.command()
@click.option('--data', 'dataset_path', help='Dataset: image folder, .zip or .npz', metavar='PATH|ZIP|NPZ',
              type=str, required=True)
@click.option('--dest', 'dest_path', help='Destination .npz file', metavar='NPZ', type=str, required=True)
@_shared_options
def ref(dataset_path, dest_path, batch, detector, trust_pickle_code, workers, device, as_json):
    """Calculate dataset reference statistics needed by 'calc'."""
    def body():
        torch_device = distributed.init(device)
        mu, sigma, num, info = _statistics(dataset_path, None, 0, batch, detector, trust_pickle_code, workers,
                                           torch_device)
        if distributed.get_rank() != 0:
            return
        saved = refs.save_reference(dest_path, mu, sigma)
        _log(f'Saved dataset reference statistics to "{saved}"')
        if as_json:
            print(json.dumps(dict(dest=saved, num_images=num, data=dataset_path, batch=batch,
                                  world_size=distributed.get_world_size(), device=str(torch_device),
                                  detector=info)))
    _run(body)


@main.command('refs')
def list_refs():
    """List NVIDIA's published reference statistics usable as --ref NAME."""
    for name, entry in refs.registry().items():
        print(f'{name:26s} {entry["url"]}\n{"":26s} {entry["dataset"]}; used by: {", ".join(entry["checkpoints"])}')
