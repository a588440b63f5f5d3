"""The metrics NVlabs' EDM2 reports and the detector behind each (docs/fid.md, 'Metrics'):

* ``fid``: Fréchet distance of NVIDIA's Inception-v3 pool features (2048; edm_bdia.fid.detector);
* ``fd_dinov2``: Fréchet distance of DINOv2 ViT-L/14 class-token features (1024; edm_bdia.fid.dinov2_weights).

`open_detectors` loads the detectors of a metric list once (rank 0 first, so a download happens once), announcing
each with NVlabs' line ("Setting up InceptionV3Detector..."). Both detectors take uint8 NCHW RGB and return float32
features: ``detector(images, return_features=True)``.
"""

from edm_bdia.errors import ArgumentError

METRICS = ('fid', 'fd_dinov2')
DETECTOR_CLASS_NAMES = {'fid': 'InceptionV3Detector', 'fd_dinov2': 'DINOv2Detector'}  # as NVlabs announces them


def parse_metrics(metrics):
    """A comma-separated string or a sequence of metric names -> a tuple in the given order, without repeats."""
    names = metrics.split(',') if isinstance(metrics, str) else list(metrics)
    names = list(dict.fromkeys(name.strip() for name in names))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ArgumentError('metrics', f'{",".join(unknown) or "(empty)"}: unknown metric; choose from '
                                       f'{", ".join(METRICS)}')
    return tuple(names)


def _load(metric, device, detector, dinov2, trust_pickle_code, precision, resize_mode):
    if metric == 'fid':
        from edm_bdia.fid.detector import load_detector_with_info
        return load_detector_with_info(detector, device=device, trust_pickle_code=trust_pickle_code)
    from edm_bdia.fid.dinov2_weights import load_dinov2_detector_with_info
    return load_dinov2_detector_with_info(dinov2, device=device, resize_mode=resize_mode, precision=precision)


def open_detectors(metrics, device='cpu', *, detector=None, dinov2=None, trust_pickle_code=False, precision='fp32',
                   resize_mode='torch', log=None):
    """Collective: ({metric: detector module}, {metric: identity dict}) for `metrics`, in eval mode on `device`.

    detector: Inception weights (path, URL or 'inception-2015-12-05'), trust_pickle_code for NVIDIA's pickle;
    dinov2: DINOv2 weights (path, URL or 'dinov2_vitl14'); precision ('fp32', 'bf16', 'fp16') of DINOv2's
    matrix products and resize_mode ('torch', 'pil') of its front end. log(message), if given, announces each
    detector (called on every rank: pass a printer that prints on rank 0 only, like distributed.print0)."""
    from edm_bdia import distributed
    from edm_bdia.fid.dinov2_detector import check_precision
    from edm_bdia.fid.dinov2_resize import check_resize_mode

    check_precision(precision)
    check_resize_mode(resize_mode)
    modules, infos = {}, {}
    with distributed.rank_zero_first():
        for metric in parse_metrics(metrics):
            if log is not None:
                log(f'Setting up {DETECTOR_CLASS_NAMES[metric]}...')
            modules[metric], infos[metric] = _load(metric, device, detector, dinov2, trust_pickle_code, precision,
                                                   resize_mode)
    return modules, infos
