"""edm_bdia.checkpoints.presets: the published NVlabs checkpoints, their settings and FID references, and
`python -m edm_bdia presets`."""

import json
import re

import pytest
from click.testing import CliRunner

from edm_bdia.__main__ import main
from edm_bdia.checkpoints.presets import PRESETS, presets_using_reference

FID_REFS = {'cifar10-32x32', 'ffhq-64x64', 'afhqv2-64x64', 'imagenet-64x64', 'imagenet-64x64-baseline'}
EDM_NAMES = [f'edm-cifar10-32x32-{c}-{a}' for c in ('cond', 'uncond') for a in ('vp', 've')] + [
    f'edm-{d}-64x64-uncond-{a}' for d in ('ffhq', 'afhqv2') for a in ('vp', 've')] + ['edm-imagenet-64x64-cond-adm']
BASELINE_NAMES = [f'baseline-cifar10-32x32-{c}-{a}' for c in ('cond', 'uncond') for a in ('vp', 've')] + [
    f'baseline-{d}-64x64-uncond-{a}' for d in ('ffhq', 'afhqv2') for a in ('vp', 've')] + [
    'baseline-imagenet-64x64-cond-adm']


def test_every_published_checkpoint_the_toy_model_and_the_digits_unet_are_listed():
    assert list(PRESETS) == EDM_NAMES + BASELINE_NAMES + ['toy-mixture-32x32-cond', 'digits-16x16-cond']


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
    assert sum(len(presets_using_reference(ref)) for ref in FID_REFS) == len(EDM_NAMES + BASELINE_NAMES)
