"""Option types shared by the commands: seed lists, BDIA's gamma, preset names."""

import click

from edm_bdia.generation.seeds import Seeds, parse_seeds


class SeedList(click.ParamType):
    """--seeds: NVlabs syntax ('0-63', '1,5,10-19'), held lazily; empty or reversed ranges are usage errors."""
    name = 'seeds'

    def convert(self, value, param, ctx):
        if isinstance(value, Seeds):
            return value
        try:
            return parse_seeds(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Gamma(click.ParamType):
    """--gamma: a number in [0, 1] or a named rule (edm_bdia.samplers.defaults.GAMMA_RULE_NAMES)."""
    name = 'gamma'

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            gamma = float(value)
        except ValueError:
            from edm_bdia.samplers.defaults import GAMMA_RULE_NAMES
            if value in GAMMA_RULE_NAMES:
                return value
            self.fail(f'{value!r} is neither a number in [0, 1] nor one of {", ".join(GAMMA_RULE_NAMES)}', param, ctx)
        if not 0 <= gamma <= 1:
            self.fail(f'{gamma} is outside [0, 1]', param, ctx)
        return gamma


def preset_choice():
    """click.Choice over the preset names (python -m edm_bdia presets)."""
    from edm_bdia.checkpoints.presets import PRESETS
    return click.Choice(list(PRESETS))


def gamma_metavar():
    from edm_bdia.samplers.defaults import GAMMA_RULE_NAMES
    return '|'.join(('FLOAT',) + GAMMA_RULE_NAMES)


GAMMA_RULES_HELP = ('"obelm-adaptive" (the default invertible sampler: O-BELM, with gamma raised toward 0.5 where '
                    'the network resolves the image), "obelm" (O-BELM\'s step-dependent gamma), "obelm-floor" (the '
                    '0.x default, for its latents files); docs/samplers.md')


def bdia_options(gamma_help):
    """--gamma (default 0: the command's own sampler; `gamma_help` says which) and --bdia-base, for generation."""
    def decorate(command):
        base_help = 'Base solver of BDIA  [default: heun for a number, euler for a named rule]'
        command = click.option('--bdia-base', 'bdia_base', type=click.Choice(['heun', 'euler']), default=None,
                               help=base_help)(command)
        return click.option('--gamma', metavar=gamma_metavar(), type=Gamma(), default=0.0, show_default=True,
                            help=f'{gamma_help}, or {GAMMA_RULES_HELP}')(command)
    return decorate


def invertible_sampler_options(command):
    """The options of an invertible round trip (invert, edit): noise levels, BDIA gamma and base, strength."""
    from edm_bdia.samplers.defaults import DEFAULT_BASE, DEFAULT_GAMMA
    options = [
        click.option('--steps', 'num_steps', metavar='INT', type=click.IntRange(min=2), default=18, show_default=True,
                     help='Number of sampling steps'),
        click.option('--sigma_min', metavar='FLOAT', type=float, default=0.002, show_default=True,
                     help='Lowest noise level'),
        click.option('--sigma_max', metavar='FLOAT', type=float, default=80, show_default=True,
                     help='Highest noise level'),
        click.option('--rho', metavar='FLOAT', type=float, default=7, show_default=True, help='Time step exponent'),
        click.option('--gamma', metavar=gamma_metavar(), type=Gamma(), default=DEFAULT_GAMMA, show_default=True,
                     help=f'BDIA gamma in (0, 1], or {GAMMA_RULES_HELP}'),
        click.option('--bdia-base', 'base', type=click.Choice(['euler', 'heun']), default=DEFAULT_BASE,
                     show_default=True, help='Base solver of BDIA'),
        click.option('--strength', metavar='FLOAT', type=float, default=1.0, show_default=True,
                     help='Fraction of the steps inverted, in (0, 1]: 1 = all the way to the latents; less keeps '
                          'more of the image (SDEdit-style)'),
        click.option('--guidance', metavar='FLOAT', type=float, default=1, show_default=True,
                     help='Guidance strength (EDM2; 1: none), with --gnet'),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_options(command):
    """The options every sharded run over a network shares."""
    options = [
        click.option('--network', 'network_pkl', metavar='PATH|URL|PRESET', default='toy-mixture-32x32-cond',
                     show_default=True, help='Network pickle (path or URL), a preset name or the built-in model'),
        click.option('--gnet', metavar='PATH|URL|PRESET', default=None,
                     help='Reference network for guidance (EDM2), with --guidance'),
        click.option('--batch', 'max_batch_size', metavar='INT', type=click.IntRange(min=1), default=64,
                     show_default=True, help='Maximum batch size'),
        click.option('--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto',
                     show_default=True, help='Compute device (auto: CUDA if available, else CPU)'),
        click.option('--resume', is_flag=True, help='Continue a killed run (same settings only)'),
        click.option('--trust-pickle-code', is_flag=True,
                     help='Allow pickles whose classes are not known to edm_bdia to run their embedded code'),
    ]
    for option in reversed(options):
        command = option(command)
    return command


PRESET_REFERENCE = 'preset'  # `--fid-ref` given without a value: the preset's reference statistics


def fill_from_preset(ctx, options, name, values, fid_ref):
    """Fill every option the user did not give from preset `name`'s `values` (None: nothing to fill), and turn a
    bare `--fid-ref` into the preset's reference statistics `fid_ref`; `name` None: no preset. Returns the names of
    the options the user gave."""
    given = {key for key in options if ctx.get_parameter_source(key) is not click.core.ParameterSource.DEFAULT}
    if name is not None:
        for key, value in values.items():
            if key not in given and value is not None:
                options[key] = value
    if options['fid_ref'] == PRESET_REFERENCE:
        if name is None:
            raise click.UsageError('--fid-ref without a value takes the reference of --preset; give --preset, or '
                                   '--fid-ref=NAME|PATH|URL')
        if fid_ref is None:
            raise click.UsageError(f'--preset {name} has no FID reference statistics; give --fid-ref=NAME|PATH|URL')
        options['fid_ref'] = fid_ref
    return given


def job_options(command):
    """The options of a generate job beyond its network and sampler (generate.py and generate_images.py): device,
    resume, the collections, FID while generating, the speed plan, trusted pickles."""
    options = [
        click.option('--device', type=click.Choice(['auto', 'cpu', 'cuda', 'mps']), default='auto',
                     show_default=True, help='Compute device (auto: CUDA if available, else CPU)'),
        click.option('--resume', is_flag=True, help='Skip seeds whose image exists (same settings only)'),
        click.option('--grid', metavar='PATH', type=str, help='Also save a grid image of the first 64 images'),
        click.option('--npz', metavar='PATH', type=str,
                     help='Also save all images as uint8 NHWC arr_0 (+ labels arr_1)'),
        click.option('--fid-ref', metavar='NAME|PATH|URL', type=str, is_flag=False, flag_value=PRESET_REFERENCE,
                     help='Compute FID against these reference statistics while generating (fid_refs name, .npz, '
                          "URL; alone: --preset's)"),
        click.option('--detector', metavar='PATH|URL', type=str,
                     help='FID detector weights  [default: NVIDIA inception-2015-12-05]'),
        click.option('--metrics', metavar='LIST', type=str,
                     help='Metrics for --fid-ref, computed in the same pass: fid, fd_dinov2 or both  [default: fid]'),
        click.option('--dinov2', metavar='PATH|URL', type=str,
                     help="FD_DINOv2 detector weights  [default: Meta's dinov2_vitl14]"),
        click.option('--speed', type=click.Choice(['reference', 'fast', 'bf16', 'fp16', 'auto']), default='reference',
                     show_default=True,
                     help='reference: NVlabs arithmetic per call; fast: NHWC fp32; bf16 (CPU with bf16 hardware, '
                          'CUDA) / fp16 (CUDA): 16-bit UNet, changes pixels; auto: the fastest precision this device '
                          'computes natively, recorded in the manifest (docs/performance.md)'),
        click.option('--tile', metavar='INT', type=click.IntRange(min=1),
                     help='Samples per network call  [default: 8 on CPU, 64 on CUDA with auto, else the batch on '
                          'CUDA]'),
        click.option('--compile', 'compile_net', is_flag=True,
                     help='torch.compile the network (not with --speed reference)'),
        click.option('--cuda-graphs', is_flag=True,
                     help='Replay network calls from CUDA graphs (CUDA, not with --speed reference)'),
        click.option('--trust-pickle-code', is_flag=True,
                     help='Allow pickles whose classes are not known to edm_bdia to run their embedded code'),
    ]
    for option in reversed(options):
        command = option(command)
    return command
