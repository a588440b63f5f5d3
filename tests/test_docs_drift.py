"""Docs that cannot drift from the code: the layout in docs/architecture.md against the folders, the gamma rule
called the default in any doc against `DEFAULT_GAMMA`, and the option defaults docs quote against the commands."""

import ast
import os
import re

import click
import pytest

from edm_bdia.cli.edit import edit, invert
from edm_bdia.cli.calculate_metrics import main as metrics_main
from edm_bdia.cli.fid import main as fid_main
from edm_bdia.cli.generate import main as generate_main
from edm_bdia.samplers.defaults import DEFAULT_GAMMA, GAMMA_RULE_NAMES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHITECTURE = os.path.join(REPO, 'docs', 'architecture.md')
DOCS = sorted([os.path.join(REPO, 'docs', name) for name in os.listdir(os.path.join(REPO, 'docs'))
               if name.endswith('.md')] + [os.path.join(REPO, 'README.md')])


def _table_paths():
    with open(ARCHITECTURE, encoding='utf-8') as f:
        return re.findall(r'^\| `([\w./]+)` \|', f.read(), flags=re.M)


def test_the_layout_table_names_every_package_folder_and_nothing_else():
    listed = set(_table_paths())
    folders = {f'edm_bdia/{name}/' for name in os.listdir(os.path.join(REPO, 'edm_bdia'))
               if os.path.isfile(os.path.join(REPO, 'edm_bdia', name, '__init__.py'))}
    assert folders <= listed, f'not in docs/architecture.md: {sorted(folders - listed)}'
    for path in listed:
        full = os.path.join(REPO, 'edm_bdia', 'samplers', path) if path.endswith('.py') and '/' not in path else \
            os.path.join(REPO, path)
        assert os.path.exists(full), f'docs/architecture.md lists {path}, which does not exist'


def test_the_samplers_table_names_every_sampler_module():
    listed = {path for path in _table_paths() if '/' not in path and path.endswith('.py')}
    modules = {name for name in os.listdir(os.path.join(REPO, 'edm_bdia', 'samplers'))
               if name.endswith('.py') and name != '__init__.py'}
    assert listed == modules


def _imports(folder):
    names = set()
    for root, _, files in os.walk(os.path.join(REPO, 'edm_bdia', folder)):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(root, name), encoding='utf-8') as f:
                    tree = ast.parse(f.read())
                names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
                names |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                          for alias in node.names}
    return names


@pytest.mark.parametrize('job, other', [('generation', 'editing'), ('editing', 'generation')])
def test_jobs_import_the_run_layer_and_not_each_other(job, other):
    imports = _imports(job)
    assert not any(name.startswith(f'edm_bdia.{other}') for name in imports)
    assert any(name.startswith('edm_bdia.runs') for name in imports)


# "the default ... `obelm`" or "`obelm` ... (the) default", in one sentence or table cell; "0.x default" is history
RULE = r'`?[\'"]?(obelm(?:-[a-z]+)?)[\'"]?`?'
DEFAULT_NEAR_RULE = [re.compile(r'\bdefaults?\b(?! invertible)[^.|\n]{0,30}?' + RULE),
                     re.compile(RULE + r'[^.|\n]{0,25}?\bdefault\b')]


@pytest.mark.parametrize('path', DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_docs_call_only_the_default_gamma_the_default(path):
    with open(path, encoding='utf-8') as f:
        text = ' '.join(f.read().split())
    for pattern in DEFAULT_NEAR_RULE:
        for match in pattern.finditer(text):
            context = text[max(match.start() - 12, 0):match.end() + 12]
            if '0.x' in context or match.group(1) not in GAMMA_RULE_NAMES:
                continue
            assert match.group(1) == DEFAULT_GAMMA, f'{os.path.relpath(path, REPO)}: "{match.group(0)}"'


COMMANDS = {'generate': generate_main, 'invert': invert, 'edit': edit}
COMMANDS.update({f'fid {name}': command for name, command in fid_main.commands.items()})
COMMANDS.update({f'metrics {name}': command for name, command in metrics_main.commands.items()})


def _defaults():
    """{option: {default values as text}} over every command (an option may differ between commands)."""
    defaults = {}
    for command in COMMANDS.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.default is not None and not param.is_flag:
                for opt in param.opts:
                    defaults.setdefault(opt, set()).add(str(param.default))
    return defaults


QUOTED_DEFAULT = re.compile(r'`(--[\w-]+)`[^.|\n`]{0,40}?\(?default:? (?:`([^`]+)`|(\d[\w.]*))')


@pytest.mark.parametrize('path', DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_quoted_option_defaults_are_the_commands_defaults(path):
    defaults = _defaults()
    with open(path, encoding='utf-8') as f:
        text = ' '.join(f.read().split())
    for option, quoted, number in QUOTED_DEFAULT.findall(text):
        value = quoted or number
        if option in defaults:
            shown = {v.rstrip('0').rstrip('.') if '.' in v else v for v in defaults[option]} | defaults[option]
            assert value in shown, f'{os.path.relpath(path, REPO)}: {option} default {value}, the code: {defaults[option]}'


@pytest.mark.parametrize('name', ['generate', 'invert', 'edit'])
def test_gamma_help_names_every_rule_and_the_default(name):
    option = next(p for p in COMMANDS[name].params if p.name == 'gamma')
    assert all(rule in option.help for rule in GAMMA_RULE_NAMES)
    assert all(rule in option.metavar for rule in GAMMA_RULE_NAMES)
    if name != 'generate':  # generate's --gamma defaults to 0: NVlabs' EDM sampler
        assert option.default == DEFAULT_GAMMA


def test_the_readme_edm2_table_is_the_presets():
    """Every cell of README's EDM2 table is a preset's published metric and guidance; every EDM2 preset has one."""
    from edm_bdia.checkpoints.presets import PRESETS
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as file:
        lines = file.read().split('| net | `-fid` |', 1)[1].split('\n\n', 1)[0].splitlines()
    variants = ['fid', 'dino', 'guid-fid', 'guid-dino', 'autog-fid', 'autog-dino']
    seen = set()
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip('|').split('|')]
        nets = cells[0].split(' / ')
        nets = [nets[0]] + [nets[0].rsplit('-', 1)[0] + n for n in nets[1:]]  # 'img64-m / -l' spells img64-l
        for variant, cell in zip(variants, cells[1:]):
            values = [cell] * len(nets) if cell == '-' else cell.split(' / ')
            for net, value in zip(nets, values, strict=True):
                if value == '-':
                    assert f'edm2-{net}-{variant}' not in PRESETS
                    continue
                preset = PRESETS[f'edm2-{net}-{variant}']
                metric = preset.fid if variant.endswith('fid') else preset.fd_dinov2
                guidance = '' if preset.guidance == 1 else f' (w {preset.guidance:g})'
                assert value == f'{metric:g}{guidance}', preset.name
                seen.add(preset.name)
    assert seen == {name for name, preset in PRESETS.items() if preset.precond == 'EDM2'}
