"""`fid.py calc|ref|refs` / `python -m edm_bdia fid ...`: NVlabs EDM's fid.py command line and defaults, plus
FD_DINOv2 beside FID in the same pass (--metrics), detector choice, JSON output, registry names for --ref, loader
workers and device choice; one process or torchrun.

Everything is checked before the first image reaches a detector: the reference statistics (readable, finite,
holding every metric asked for, of the detectors' feature sizes), the destination, the image count against --num
and the image sizes (from the file headers). The result (or the JSON record) is the only thing written to stdout,
by rank 0; progress goes to stderr. The detector options are shared with calculate_metrics.py.
"""

import json
import sys

import click

from edm_bdia.cli.errors import command_errors

OPTIONS = {'reference': '--ref', 'images': '--images', 'num': '--num', 'detector': '--detector', 'device': '--device',
           'dest': '--dest', 'batch_size': '--batch', 'method': '--fd-method', 'metrics': '--metrics',
           'trust_pickle_code': '--trust-pickle-code', 'dinov2': '--dinov2', 'precision': '--precision',
           'resize_mode': '--resize-mode'}
REF_OPTIONS = dict(OPTIONS, images='--data')  # `ref` reads its images from --data
DEVICES = ['auto', 'cpu', 'cuda', 'mps']


def detector_options(command):
    """The options that find and run the detectors (library keywords of edm_bdia.fid.metrics.open_detectors)."""
    options = [
        click.option('--detector', help='Inception weights (fid): .pkl/.pt path, URL or inception-2015-12-05',
                     metavar='PATH|URL|NAME', default='inception-2015-12-05', show_default=True),
        click.option('--trust-pickle-code', help="Run the Inception pickle's embedded code (as EDM does)",
                     is_flag=True),
        click.option('--dinov2', help="DINOv2 weights (fd_dinov2): Meta's .pth path, URL or dinov2_vitl14",
                     metavar='PATH|URL|NAME', default='dinov2_vitl14', show_default=True),
        click.option('--precision', help="DINOv2's matrix products: fp32, or bf16 / fp16 (faster, other numbers)",
                     type=click.Choice(['fp32', 'bf16', 'fp16']), default='fp32', show_default=True),
        click.option('--resize-mode', help='DINOv2 resize to 224x224: torch (bicubic, antialiased, float) or pil '
                     '(PIL bicubic, uint8)', type=click.Choice(['torch', 'pil']), default='torch', show_default=True),
        click.option('--device', help='Compute device', type=click.Choice(DEVICES), default='auto',
                     show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _shared_options(json_help):
    """Options common to calc and ref (`json_help` says what each prints with --json)."""
    return lambda command: _with_shared_options(command, json_help)


def _with_shared_options(command, json_help):
    options = [
        click.option('--metrics', help='Metrics to compute in one pass over the images: fid, fd_dinov2 or both',
                     metavar='LIST', default='fid', show_default=True),
        click.option('--batch', help='Maximum batch size per rank', metavar='INT', type=click.IntRange(min=1),
                     default=64, show_default=True),
        click.option('--workers', help='DataLoader worker processes per rank  [default: 3, fewer on small machines]',
                     metavar='INT', type=click.IntRange(min=0), default=None),
        click.option('--json', 'as_json', help=json_help, is_flag=True),
    ]
    for option in reversed(options):
        command = option(command)
    return detector_options(command)


def print_values(values):
    """The result lines: a lone metric as its bare number (EDM's output), several as `metric = value` lines."""
    if len(values) == 1:
        print(f'{next(iter(values.values())):g}')
        return
    for metric, value in values.items():
        print(f'{metric} = {value:g}')


@click.group(context_settings=dict(help_option_names=['-h', '--help'], max_content_width=110))
def main():
    """Calculate Frechet Inception Distance (FID), EDM-compatible, and FD_DINOv2.

    \b
    Examples:
    # Reference statistics of a dataset
    python fid.py ref --data=datasets/cifar10-32x32.zip --dest=fid-refs/cifar10-32x32.npz
    # FID of 50k generated images against NVIDIA's published statistics
    python fid.py calc --images=fid-tmp --ref=cifar10-32x32
    torchrun --standalone --nproc_per_node=2 fid.py calc --images=fid-tmp --ref=cifar10-32x32
    # FID and FD_DINOv2 in one pass, against EDM2's ImageNet-512 statistics
    python fid.py calc --images=out --ref=img512 --metrics=fid,fd_dinov2
    """


@main.command()
@click.option('--images', 'image_path', help='Image folder, .zip or generate.py .npz', metavar='PATH|ZIP|NPZ',
              type=str, required=True)
@click.option('--ref', 'ref_source', help='Reference statistics: .npz/.pkl path, URL or registry name (fid.py refs)',
              metavar='NPZ|PKL|URL|NAME', type=str, required=True)
@click.option('--num', 'num_expected', help='Number of images to use: a random subset of this size (EDM uses '
              '50000); the folder must hold at least this many', metavar='INT', type=click.IntRange(min=2),
              default=50000, show_default=True)
@click.option('--seed', help='Random seed for selecting the images', metavar='INT', type=int, default=0,
              show_default=True)
@click.option('--fd-method', help='How tr sqrt(S1 S2) is computed', type=click.Choice(['svd', 'scipy']),
              default='svd', show_default=True)
@_shared_options('Print a JSON record (metric values, image count, reference, detectors) instead of the bare number')
def calc(image_path, ref_source, num_expected, seed, fd_method, metrics, batch, workers, as_json, **detectors):
    """Calculate FID (and FD_DINOv2) for a given set of images."""
    with command_errors(OPTIONS):
        from edm_bdia.fid.metrics import parse_metrics
        metrics = parse_metrics(metrics)  # before torch is imported: a typo fails at once
        from edm_bdia import distributed
        from edm_bdia.fid.extract import image_statistics
        from edm_bdia.fid.frechet import frechet_distance
        from edm_bdia.speed import retain_freed_memory
        retain_freed_memory()  # this process only measures: the detectors stop page-faulting their activations
        stats = image_statistics(image_path, metrics=metrics, num=num_expected, seed=seed, batch_size=batch,
                                 workers=workers, reference=ref_source, progress=True, **detectors)
        if distributed.get_rank() != 0:
            return
        values = {metric: frechet_distance(*stats.statistics[metric], *stats.references[metric], method=fd_method)
                  for metric in metrics}
        if as_json:
            print(json.dumps(dict(values, num_images=stats.num_images, images=image_path, ref=ref_source, seed=seed,
                                  batch=batch, world_size=distributed.get_world_size(), fd_method=fd_method,
                                  device=str(stats.device), detectors=stats.detectors)))
        else:
            print_values(values)


@main.command()
@click.option('--data', 'dataset_path', help='Dataset: image folder, .zip or .npz', metavar='PATH|ZIP|NPZ',
              type=str, required=True)
@click.option('--dest', 'dest_path', help="Destination: .npz (EDM's file, fid only) or .pkl (EDM2's, any metrics)",
              metavar='NPZ|PKL', type=str, required=True)
@_shared_options('Also print a JSON record of the run (destination, metrics, image count, detectors)')
def ref(dataset_path, dest_path, metrics, batch, workers, as_json, **detectors):
    """Calculate dataset reference statistics needed by 'calc'."""
    with command_errors(REF_OPTIONS):
        from edm_bdia.fid.metrics import parse_metrics
        metrics = parse_metrics(metrics)  # before torch is imported: a typo fails at once
        from edm_bdia import distributed
        from edm_bdia.fid.extract import reference_statistics
        from edm_bdia.speed import retain_freed_memory
        retain_freed_memory()  # this process only measures: the detectors stop page-faulting their activations
        saved, stats = reference_statistics(dataset_path, dest_path, metrics=metrics, batch_size=batch,
                                            workers=workers, progress=True, **detectors)
        if saved is None:  # not rank 0
            return
        print(f'Saved dataset reference statistics to "{saved}"', file=sys.stderr)
        if as_json:
            print(json.dumps(dict(dest=saved, metrics=list(metrics), num_images=stats.num_images, data=dataset_path,
                                  batch=batch, world_size=distributed.get_world_size(), device=str(stats.device),
                                  detectors=stats.detectors)))


@main.command('refs')
def list_refs():
    """List NVIDIA's published reference statistics usable as --ref NAME."""
    from edm_bdia.checkpoints.presets import presets_using_reference
    from edm_bdia.fid import refs
    for name, entry in refs.registry().items():
        used_by = ', '.join(presets_using_reference(name)) or '-'
        print(f'{name:26s} {entry["url"]}\n{"":26s} {entry["dataset"]}; used by: {used_by}')
