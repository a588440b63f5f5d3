"""The project stands alone: every document its code and docs cite is in docs/, and every cited section exists."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCHED = ('edm_bdia', 'torch_utils', 'tests', 'benchmarks', 'docs', 'fid_refs', 'generate.py', 'fid.py', 'README.md',
            'setup.cfg', '.ci')
TEXT_SUFFIXES = ('.py', '.md', '.cfg', '.json', '.sh', '')
# The research notes the project was started from: never cited, the project's own docs/ explain instead.
OUTSIDE_NOTES = re.compile(r'(?<![\w/.-])(edm-format|edm-networks|perf|bdia|ecosystem|fid)\.md')
DOCS_FILE = re.compile(r'docs/([\w-]+\.md)')
# A cited section: docs/x.md, 'Title' (or "Title").
CITATION = re.compile(r'docs/([\w-]+\.md), *([\'"])([^\'"]{2,80})\2')


def _files():
    for entry in SEARCHED:
        path = os.path.join(REPO, entry)
        if os.path.isfile(path):
            yield path
        for root, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ('__pycache__', 'data', 'results')]
            for name in names:
                if os.path.splitext(name)[1] in TEXT_SUFFIXES and name != os.path.basename(__file__):
                    yield os.path.join(root, name)


def _text(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return ' '.join(f.read().split())  # citations may wrap over lines and comment markers


def _headings(doc):
    with open(os.path.join(REPO, 'docs', doc), encoding='utf-8') as f:
        return {line.lstrip('#').strip() for line in f if line.startswith('#')}


FILES = sorted(set(_files()))


@pytest.mark.parametrize('path', FILES, ids=lambda p: os.path.relpath(p, REPO))
def test_no_outside_documents_are_cited(path):
    text = _text(path).replace('# ', '')
    assert '../shared' not in text and '§' not in text and not re.search(r'\btrap \d', text)
    assert not OUTSIDE_NOTES.findall(text), f'cites {OUTSIDE_NOTES.findall(text)}, which are not in the project'
    for name in DOCS_FILE.findall(text):
        assert os.path.exists(os.path.join(REPO, 'docs', name)), f'docs/{name} is cited but does not exist'


@pytest.mark.parametrize('path', FILES, ids=lambda p: os.path.relpath(p, REPO))
def test_cited_sections_exist(path):
    for doc, _quote, title in CITATION.findall(_text(path).replace('# ', '')):
        if not os.path.exists(os.path.join(REPO, 'docs', doc)):
            continue  # reported by the test above
        assert any(title.strip() == heading or heading.endswith(title.strip()) for heading in _headings(doc)), \
            f'docs/{doc} has no section titled {title!r}'
