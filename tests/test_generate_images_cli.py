"""`generate_images.py` (NVlabs edm2's command): its option set, PNGs against an independent restatement of edm2's
generation pipeline, guidance from the command line, the invertible extra, and the errors of the guidance options."""

import io

import click
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from edm_bdia.cli.generate_images import main
from helpers.generate import edm_net_pickle, nvlabs_latents_and_label, pngs
from test_sample_guidance import restated_edm2


@pytest.fixture(scope='module')
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp('edm2-cli')
    return (edm_net_pickle(folder / 'net.pkl', resolution=8, seed=0),
            edm_net_pickle(folder / 'gnet.pkl', resolution=8, seed=1),
            edm_net_pickle(folder / 'other.pkl', resolution=16, seed=2))


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def test_the_options_and_defaults_are_edm2s():
    """The option set of NVlabs edm2's generate_images.py, with its defaults (this package's extras beside them;
    --outdir, required there, may be left out here beside --fid-ref)."""
    edm2 = {'--preset': None, '--net': None, '--gnet': None, '--subdirs': False,
            '--seeds': '16-19', '--class': None, '--batch': 32, '--steps': 32, '--sigma_min': 0.002,
            '--sigma_max': 80, '--rho': 7, '--guidance': None, '--S_churn': 0, '--S_min': 0, '--S_max': 'inf',
            '--S_noise': 1}
    context = click.Context(main)
    ours = {opt: param.get_default(context, call=False) for param in main.params for opt in param.opts}
    assert {opt: ours[opt] for opt in edm2} == edm2 and '--outdir' in ours


def edm2_restated_png(net, seed, num_steps, gnet=None, guidance=1):
    """edm2's pipeline for one seed: the seed's generator draws the noise, then the label; EDM2's sampler in
    float32; the standard RGB decoding x * 127.5 + 128, clipped, truncated to uint8; an RGB PNG."""
    generator, noise, label = nvlabs_latents_and_label(net, seed)
    labels = torch.eye(net.label_dim)[label][None]
    with torch.no_grad():
        image = restated_edm2(net, noise[None], labels, gnet, num_steps, guidance, 0, None)
    array = (image.to(torch.float32) * 127.5 + 128).clip(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    PIL.Image.fromarray(array, 'RGB').save(buffer, format='PNG')
    return buffer.getvalue()


@pytest.mark.parametrize('guidance', [None, 1.8])
def test_pngs_equal_a_restatement_of_edm2(tmp_path, nets, guidance):
    net_pkl, gnet_pkl, _ = nets
    from edm_bdia import load_network
    net, gnet = load_network(net_pkl), load_network(gnet_pkl)
    extra = [] if guidance is None else ['--gnet', gnet_pkl, '--guidance', guidance]
    result = invoke('--net', net_pkl, '--outdir', tmp_path, '--seeds', '3-5', '--steps', 5, *extra)
    assert result.exit_code == 0, result.output
    written = pngs(tmp_path)
    for seed in (3, 4, 5):
        expected = edm2_restated_png(net, seed, 5, gnet, 1 if guidance is None else guidance)
        assert written[f'{seed:06d}.png'] == expected, seed


def test_the_invertible_sampler_runs_with_guidance(tmp_path, nets):
    net_pkl, gnet_pkl, _ = nets
    result = invoke('--net', net_pkl, '--gnet', gnet_pkl, '--guidance', 2, '--gamma', 'obelm-adaptive',
                    '--outdir', tmp_path, '--seeds', '0-1', '--steps', 8)
    assert result.exit_code == 0, result.output
    assert len(pngs(tmp_path)) == 2


@pytest.mark.parametrize('args, message', [
    ([], 'please specify either --preset or --net'),
    (['--net', 'NET', '--guidance', 2], 'please specify --gnet when using guidance'),
    (['--net', 'NET', '--gnet', 'GNET'], '--gnet is only used with --guidance other than 1'),
    (['--net', 'NET', '--gnet', 'OTHER', '--guidance', 2], '--gnet makes 3x16x16 images'),
    (['--net', 'NET', '--gnet', 'GNET', '--guidance', 2, '--gamma', 0.5, '--S_churn', 5], '--S_churn must be 0'),
    (['--net', 'NET', '--fid-ref'], '--fid-ref without a value takes the reference of --preset'),
    (['--preset', 'toy-mixture-32x32-cond', '--fid-ref'], 'has no FID reference statistics'),
])
def test_guidance_and_network_errors_are_one_line_before_any_work(tmp_path, nets, args, message):
    names = dict(zip(('NET', 'GNET', 'OTHER'), nets))
    outdir = tmp_path / 'out'
    result = CliRunner().invoke(main, [str(names.get(arg, arg)) for arg in args] + ['--outdir', str(outdir)])
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert not outdir.exists()


def test_a_guided_preset_fills_the_guiding_network_and_its_weight():
    """--preset stands for edm2's whole configuration: net, gnet and guidance; an option given wins."""
    from edm_bdia.checkpoints.presets import PRESETS
    from edm_bdia.cli.generate_images import apply_preset
    guided = [p for p in PRESETS.values() if p.guidance not in (None, 1)]
    assert guided
    preset = guided[0]

    def options(*args):
        ctx = main.make_context('generate_images.py', ['--preset', preset.name, '--outdir', 'out', *args])
        return apply_preset(ctx, dict(ctx.params))

    filled = options()
    assert (filled['net'], filled['gnet'], filled['guidance']) == (preset.name, preset.gnet, preset.guidance)
    assert preset.gnet is not None and filled['num_steps'] == preset.sampler['num_steps']
    assert options('--guidance', '2.5')['guidance'] == 2.5
    unguided = options('--guidance', '1')
    assert unguided['guidance'] == 1 and unguided['gnet'] is None
