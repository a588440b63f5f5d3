"""`calculate_metrics.py calc|gen|ref` / `python -m edm_bdia metrics ...`: NVlabs EDM2's calculate_metrics.py
command line with its options, defaults and output lines (docs/fid.md, 'calculate_metrics.py').

NVlabs' commands run unchanged and print NVlabs' lines on stdout ("Loading feature statistics from ...",
"Setting up InceptionV3Detector...", "Calculating feature statistics...", "Calculating fid...", "fid = 2.345");
the progress bar goes to stderr. Unlike NVlabs, every input is checked before the first image is processed (a
reference without a metric asked for is an error, not a skipped metric), the detectors run without downloaded
code, and the detector options of fid.py (--detector, --dinov2, --precision, --resize-mode, --device) are
accepted too. `gen` samples with EDM2's sampler and settings (edm_bdia.sample.edm2_sampler, 32 Heun steps),
writing no images; `--gnet` and `--guidance` add guidance as generate_images.py takes it.
"""

import click

from edm_bdia.cli.errors import command_errors
from edm_bdia.cli.fid import OPTIONS as FID_OPTIONS, detector_options

OPTIONS = dict(FID_OPTIONS, network='--net', max_batch_size='--batch', gnet='--gnet', guidance='--guidance')
REF_OPTIONS = dict(OPTIONS, images='--data')
METRICS_DEFAULT = 'fid,fd_dinov2'


def _log(message):
    from edm_bdia import distributed
    distributed.print0(message, flush=True)


def _print_results(values):
    for metric, value in values.items():
        print(f'Calculating {metric}...')
        print(f'{metric} = {value:g}')


def _metrics_option(command):
    return click.option('--metrics', help='List of metrics to compute', metavar='LIST', default=METRICS_DEFAULT,
                        show_default=True)(command)


def _reference_and_metrics_options(command):
    """calc's and gen's --ref and --metrics."""
    command = _metrics_option(command)
    return click.option('--ref', 'ref_path', help='Dataset reference statistics', metavar='PKL|NPZ|URL|NAME',
                        type=str, required=True)(command)


def _loader_options(command):
    """calc's and ref's --batch and --workers, with NVlabs' defaults."""
    command = click.option('--workers', 'num_workers', help='Subprocesses to use for data loading', metavar='INT',
                           type=click.IntRange(min=0), default=2, show_default=True)(command)
    return click.option('--batch', 'max_batch_size', help='Maximum batch size', metavar='INT',
                        type=click.IntRange(min=1), default=64, show_default=True)(command)


def _parsed(metrics):
    from edm_bdia.fid.metrics import parse_metrics
    return parse_metrics(metrics)  # before torch is imported: a typo fails at once


def _keep_freed_memory():
    from edm_bdia.speed import retain_freed_memory
    retain_freed_memory()  # this process only measures: the detectors stop page-faulting their activations


@click.group(context_settings=dict(help_option_names=['-h', '--help'], max_content_width=110))
def main():
    """Calculate evaluation metrics (FID and FD_DINOv2).

    \b
    Examples:
    # Calculate metrics for a random subset of 50000 images in out/
    python calculate_metrics.py calc --images=out --ref=img512
    \b
    # Calculate metrics directly for a given model without saving any images
    torchrun --standalone --nproc_per_node=8 calculate_metrics.py gen --net=NET.pkl --ref=img512 --seed=123456789
    \b
    # Compute dataset reference statistics
    python calculate_metrics.py ref --data=datasets/my-dataset.zip --dest=fid-refs/my-dataset.pkl
    """


@main.command()
@click.option('--images', 'image_path', help='Path to the images', metavar='PATH|ZIP', type=str, required=True)
@_reference_and_metrics_options
@click.option('--num', 'num_images', help='Number of images to use', metavar='INT', type=click.IntRange(min=2),
              default=50000, show_default=True)
@click.option('--seed', help='Random seed for selecting the images', metavar='INT', type=int, default=0,
              show_default=True)
@_loader_options
@detector_options
def calc(image_path, ref_path, metrics, num_images, seed, max_batch_size, num_workers, **detectors):
    """Calculate metrics for a given set of images."""
    with command_errors(OPTIONS):
        metrics = _parsed(metrics)
        _keep_freed_memory()
        from edm_bdia import distributed
        from edm_bdia.fid.extract import image_statistics
        from edm_bdia.fid.frechet import frechet_distance
        stats = image_statistics(image_path, metrics=metrics, num=num_images, seed=seed, batch_size=max_batch_size,
                                 workers=num_workers, reference=ref_path, progress=True, log=_log, **detectors)
        if distributed.get_rank() == 0:
            _print_results({metric: frechet_distance(*stats.statistics[metric], *stats.references[metric])
                            for metric in metrics})


@main.command()
@click.option('--net', 'network', help='Network pickle filename', metavar='PATH|URL|PRESET', type=str,
              required=True)
@_reference_and_metrics_options
@click.option('--num', 'num_images', help='Number of images to generate', metavar='INT', type=click.IntRange(min=2),
              default=50000, show_default=True)
@click.option('--seed', help='Random seed for the first image', metavar='INT', type=int, default=0,
              show_default=True)
@click.option('--batch', 'max_batch_size', help='Maximum batch size', metavar='INT', type=click.IntRange(min=1),
              default=32, show_default=True)
@click.option('--gnet', metavar='PATH|URL|PRESET', type=str, default=None, help='Reference network for guidance')
@click.option('--guidance', metavar='FLOAT', type=float, default=1, show_default=True,
              help='Guidance strength (1: no guidance)')
@detector_options
def gen(network, ref_path, metrics, num_images, seed, max_batch_size, gnet, guidance, **detectors):
    """Calculate metrics for a given model using default sampler settings."""
    with command_errors(OPTIONS):
        metrics = _parsed(metrics)
        if (gnet is None) != (guidance == 1):
            raise click.UsageError('guidance needs both --gnet and --guidance other than 1 (edm2 drops --gnet at 1)')
        _keep_freed_memory()
        from edm_bdia.generation import choose_edm2_sampler, generated_metrics
        sampler_fn, sampler_kwargs = choose_edm2_sampler(guidance=guidance)
        guided = {} if gnet is None else dict(gnet=gnet)
        values = generated_metrics(network, range(seed, seed + num_images), ref_path, metrics=metrics,
                                   sampler_fn=sampler_fn, max_batch_size=max_batch_size, progress=True, log=_log,
                                   **guided, **sampler_kwargs, **detectors)
        if values is not None:  # rank 0
            _print_results(values)


@main.command()
@click.option('--data', 'image_path', help='Path to the dataset', metavar='PATH|ZIP', type=str, required=True)
@click.option('--dest', 'dest_path', help='Destination file', metavar='PKL', type=str, required=True)
@_metrics_option
@_loader_options
@detector_options
def ref(image_path, dest_path, metrics, max_batch_size, num_workers, **detectors):
    """Calculate dataset reference statistics for 'calc' and 'gen'."""
    with command_errors(REF_OPTIONS):
        metrics = _parsed(metrics)
        _keep_freed_memory()
        from edm_bdia.fid.extract import reference_statistics
        reference_statistics(image_path, dest_path, metrics=metrics, file_format='pkl', batch_size=max_batch_size,
                             workers=num_workers, progress=True, log=_log, **detectors)
