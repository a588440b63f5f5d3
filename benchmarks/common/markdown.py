"""Markdown for the benchmark reports."""


def table(header, rows):
    """A markdown table: one header row, then `rows` (lists of cells, any type)."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)
