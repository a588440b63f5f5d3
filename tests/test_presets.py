"""edm_bdia.checkpoints.presets: the published NVlabs checkpoints (EDM and EDM2), their settings, guidance and
metrics, FID references, and `python -m edm_bdia presets`."""

import json
import re

import pytest
from click.testing import CliRunner

from edm_bdia.__main__ import main
from edm_bdia.checkpoints.presets import PRESETS, presets_using_reference

FID_REFS = {'cifar10-32x32', 'ffhq-64x64', 'afhqv2-64x64', 'imagenet-64x64', 'imagenet-64x64-baseline', 'img512', 'img64'}
EDM_NAMES = [f'edm-cifar10-32x32-{c}-{a}' for c in ('cond', 'uncond') for a in ('vp', 've')] + [
    f'edm-{d}-64x64-uncond-{a}' for d in ('ffhq', 'afhqv2') for a in ('vp', 've')] + ['edm-imagenet-64x64-cond-adm']
BASELINE_NAMES = [f'baseline-cifar10-32x32-{c}-{a}' for c in ('cond', 'uncond') for a in ('vp', 've')] + [
    f'baseline-{d}-64x64-uncond-{a}' for d in ('ffhq', 'afhqv2') for a in ('vp', 've')] + [
    'baseline-imagenet-64x64-cond-adm']
# NVlabs/edm2 generate_images.py (commit 4bf8162): 36 configurations, in its order
EDM2_SIZES = ['xs', 's', 'm', 'l', 'xl', 'xxl']
EDM2_NAMES = ([f'edm2-img512-{s}-{m}' for s in EDM2_SIZES for m in ('fid', 'dino')]
              + [f'edm2-img64-{s}-fid' for s in ('s', 'm', 'l', 'xl')]
              + [f'edm2-img512-{s}-guid-{m}' for s in EDM2_SIZES for m in ('fid', 'dino')]
              + [f'edm2-img512-{s}-autog-{m}' for s in ('s', 'xxl', 's-uncond') for m in ('fid', 'dino')]
              + ['edm2-img64-s-autog-fid', 'edm2-img64-s-autog-dino'])
EDM2_ROOT = 'https://nvlabs-fi-cdn.nvidia.com/edm2/posthoc-reconstructions/'


def test_every_published_checkpoint_the_toy_model_and_the_digits_unet_are_listed():
    assert len(EDM2_NAMES) == 36
    assert list(PRESETS) == EDM_NAMES + BASELINE_NAMES + EDM2_NAMES + ['toy-mixture-32x32-cond', 'digits-16x16-cond']


@pytest.mark.parametrize('name', EDM2_NAMES)
def test_edm2_preset_is_consistent_with_its_name(name):
    preset = PRESETS[name]
    res, size, uncond, guide, metric = re.fullmatch(r'edm2-img(512|64)-(\w+?)(-uncond)?(-guid|-autog)?-(fid|dino)',
                                                    name).groups()
    net = re.fullmatch(re.escape(EDM2_ROOT) + rf'edm2-img{res}-{size}{uncond or ""}-(\d{{7}})-(0\.\d{{3}})\.pkl',
                       preset.net)
    assert net and preset.net == preset.url
    assert preset.resolution == int(res) and preset.conditional == (uncond is None)
    assert preset.precond == 'EDM2' and preset.arch == f'EDM2-{size.upper()}'
    assert preset.sampler == dict(num_steps=32, S_churn=0) and preset.nfe == 63  # EDM2's sampler default
    if guide is None:
        assert preset.gnet is None and preset.guidance == 1
    elif guide == '-guid':  # classifier-free guidance: the XS unconditional net with the main net's EMA length
        assert preset.gnet == f'{EDM2_ROOT}edm2-img{res}-xs-uncond-2147483-{net[2]}.pkl' and 1 < preset.guidance <= 2
    else:  # autoguidance: an early, smaller snapshot (of the same conditioning)
        early = rf'edm2-img{res}-(xs|m){uncond or ""}-0(134217|268435)-0\.\d{{3}}\.pkl'
        assert re.fullmatch(re.escape(EDM2_ROOT) + early, preset.gnet) and 1.5 < preset.guidance < 3
    published = preset.fid if metric == 'fid' else preset.fd_dinov2
    other = preset.fd_dinov2 if metric == 'fid' else preset.fid
    assert published > 1 and other is None and preset.source
    assert preset.fid_ref == f'img{res}' and preset.fid_ref in FID_REFS  # EDM2's statistics hold both metrics


def test_edm2_headline_numbers_and_generation_settings():
    assert PRESETS['edm2-img512-xxl-autog-fid'].fid == 1.25 and PRESETS['edm2-img64-s-autog-fid'].fid == 1.01
    assert PRESETS['edm2-img512-xs-dino'].fd_dinov2 == 103.39
    settings = PRESETS['edm2-img512-xxl-autog-fid'].generation_settings()
    assert settings.network == 'edm2-img512-xxl-autog-fid' and settings.guidance == 2.05
    assert settings.gnet == EDM2_ROOT + 'edm2-img512-m-0268435-0.155.pkl'
    assert settings.sampler_options == dict(num_steps=32, S_churn=0)
    unguided = PRESETS['edm-cifar10-32x32-cond-vp'].generation_settings()
    assert unguided.gnet is None and unguided.guidance == 1


@pytest.mark.parametrize('name', EDM_NAMES + BASELINE_NAMES)
def test_preset_is_consistent_with_its_name(name):
    preset = PRESETS[name]
    kind, dataset, resolution, cond, arch = re.fullmatch(r'(edm|baseline)-(\w+)-(\d+)x\3-(cond|uncond)-(vp|ve|adm)',
                                                         name).groups()
    folder = 'pretrained/' if kind == 'edm' else 'pretrained/baseline/'
    assert preset.url == f'https://nvlabs-fi-cdn.nvidia.com/edm/{folder}{name}.pkl'
    assert preset.resolution == int(resolution) and preset.conditional == (cond == 'cond')
    assert preset.arch == dict(vp='DDPM++', ve='NCSN++', adm='ADM')[arch]  # the suffix names the architecture
    baseline_precond = dict(vp='VP', ve='VE', adm='iDDPM')[arch]
    assert preset.precond == ('EDM' if kind == 'edm' else baseline_precond)  # every edm-* pickle is EDMPrecond
    assert preset.nfe == 2 * preset.sampler['num_steps'] - 1  # Heun with an Euler last step
    expected_ref = 'imagenet-64x64-baseline' if name == 'baseline-imagenet-64x64-cond-adm' else f'{dataset}-{resolution}x{resolution}'
    assert preset.fid_ref == expected_ref and preset.fid_ref in FID_REFS
    assert preset.fid > 1 and preset.source


def test_headline_numbers_from_the_paper():
    assert (PRESETS['edm-cifar10-32x32-cond-vp'].fid, PRESETS['edm-cifar10-32x32-cond-vp'].nfe) == (1.79, 35)
    assert (PRESETS['edm-ffhq-64x64-uncond-vp'].fid, PRESETS['edm-ffhq-64x64-uncond-vp'].nfe) == (2.39, 79)
    imagenet = PRESETS['edm-imagenet-64x64-cond-adm']
    assert imagenet.fid == 1.36 and imagenet.sampler == dict(num_steps=256, S_churn=40, S_min=0.05, S_max=50,
                                                               S_noise=1.003)


def test_command_line_table_and_json():
    runner = CliRunner()
    table = runner.invoke(main, ['presets']).output
    for name, preset in PRESETS.items():
        row = next(line for line in table.splitlines() if line.startswith(name + ' '))
        assert str(preset.nfe) in row.split() and (preset.fid_ref or '-') in row.split()
        if preset.precond == 'EDM2':
            gnet = '-' if preset.gnet is None else preset.gnet.rsplit('/', 1)[1][:-len('.pkl')]
            assert gnet in row.split() and f'{preset.guidance:g}' in row.split()
            assert f'{preset.fid or preset.fd_dinov2:g}' in row.split()
    records = json.loads(runner.invoke(main, ['presets', '--json']).output)
    assert [record['name'] for record in records] == list(PRESETS)
    assert records[0]['url'] == PRESETS[records[0]['name']].url


def test_generation_settings_are_what_the_preset_says_and_a_fresh_copy():
    imagenet = PRESETS['edm-imagenet-64x64-cond-adm'].generation_settings()
    assert imagenet.network == 'edm-imagenet-64x64-cond-adm' and imagenet.fid_ref == 'imagenet-64x64'
    assert imagenet.sampler_options == dict(num_steps=256, S_churn=40, S_min=0.05, S_max=50, S_noise=1.003)
    imagenet.sampler_options['num_steps'] = 2  # a caller changing its copy does not change the preset
    assert PRESETS['edm-imagenet-64x64-cond-adm'].sampler['num_steps'] == 256
    toy = PRESETS['toy-mixture-32x32-cond']
    assert toy.builtin and toy.generation_settings().fid_ref is None


def test_reference_users_are_derived_from_the_presets():
    assert presets_using_reference('imagenet-64x64-baseline') == ['baseline-imagenet-64x64-cond-adm']
    assert presets_using_reference('ffhq-64x64') == [name for name in EDM_NAMES + BASELINE_NAMES if '-ffhq-' in name]
    assert presets_using_reference('img64') == [name for name in PRESETS if name.startswith('edm2-img64-')]
    # all but the toy model and the digits UNet, which have no published reference statistics
    assert sum(len(presets_using_reference(ref)) for ref in FID_REFS) == len(PRESETS) - 2
