"""A small log-log line plot drawn with Pillow (no plotting dependency), for the benchmark reports."""

import math

from PIL import Image, ImageDraw, ImageFont

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (100, 100, 255), (128, 0, 0),
           (0, 110, 110)]
DASHED = 'dashed'


def _plottable(y):
    """Positive and finite: what a log axis can show (zeros and blow-ups are left out of the line)."""
    return y is not None and 0 < y < math.inf


def _log_ticks(lo, hi):
    return [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _dashed_line(draw, points, colour, width):
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        steps = max(int(math.hypot(x1 - x0, y1 - y0) / 6), 1)
        for k in range(0, steps, 2):
            a, b = k / steps, min(k + 1, steps) / steps
            draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))],
                      fill=colour, width=width)


def draw_panel(draw, box, title, series, xlabel, ylabel):
    """Draw one panel: `series` is a list of (label, xs, ys, style) with style None or DASHED."""
    left, top, right, bottom = box
    xs = [x for _, sx, sy, _ in series for x, y in zip(sx, sy) if _plottable(y)]
    ys = [y for _, sx, sy, _ in series for y in sy if _plottable(y)]
    xticks, yticks = _log_ticks(min(xs), max(xs)), _log_ticks(min(ys), max(ys))
    lx, hx = math.log10(xticks[0]), math.log10(xticks[-1])
    ly, hy = math.log10(yticks[0]), math.log10(yticks[-1])
    px0, py0, px1, py1 = left + 60, top + 30, right - 10, bottom - 45

    def to_px(x, y):
        return (px0 + (math.log10(x) - lx) / (hx - lx) * (px1 - px0),
                py1 - (math.log10(y) - ly) / (hy - ly) * (py1 - py0))

    draw.rectangle([px0, py0, px1, py1], outline=(0, 0, 0))
    for x in xticks:
        gx, _ = to_px(x, yticks[0])
        draw.line([(gx, py0), (gx, py1)], fill=(225, 225, 225))
        draw.text((gx - 10, py1 + 5), f'{x:g}', fill=(0, 0, 0))
    for y in yticks:
        _, gy = to_px(xticks[0], y)
        draw.line([(px0, gy), (px1, gy)], fill=(225, 225, 225))
        draw.text((left + 5, gy - 6), f'{y:.0e}', fill=(0, 0, 0))
    draw.text(((px0 + px1) / 2 - 3 * len(title), top + 8), title, fill=(0, 0, 0))
    draw.text(((px0 + px1) / 2 - 3 * len(xlabel), bottom - 22), xlabel, fill=(0, 0, 0))
    draw.text((left + 5, top + 8), ylabel, fill=(0, 0, 0))
    for k, (label, sx, sy, style) in enumerate(series):
        points = [to_px(x, y) for x, y in zip(sx, sy) if _plottable(y)]
        colour = PALETTE[k % len(PALETTE)]
        if style == DASHED:
            _dashed_line(draw, points, colour, 2)
        else:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)


def save_panels(path, panels, xlabel, ylabel, panel_size=(520, 420), legend_width=300, columns=None):
    """Save panels [(title, series)] on a grid of `columns` (default: one row) sharing one legend, taken from the
    panel with the most series."""
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    width = panel_size[0] * columns + legend_width
    image = Image.new('RGB', (width, panel_size[1] * rows), 'white')
    draw = ImageDraw.Draw(image)
    draw.font = ImageFont.load_default(size=12)
    for k, (title, series) in enumerate(panels):
        left, top = (k % columns) * panel_size[0], (k // columns) * panel_size[1]
        draw_panel(draw, (left, top, left + panel_size[0], top + panel_size[1]), title, series, xlabel, ylabel)
    x0 = panel_size[0] * columns + 10
    legend = max((series for _, series in panels), key=len)
    for k, (label, _, _, style) in enumerate(legend):
        y = 40 + 18 * k
        colour = PALETTE[k % len(PALETTE)]
        if style == DASHED:
            _dashed_line(draw, [(x0, y + 6), (x0 + 24, y + 6)], colour, 2)
        else:
            draw.line([(x0, y + 6), (x0 + 24, y + 6)], fill=colour, width=2)
        draw.text((x0 + 30, y), label, fill=(0, 0, 0))
    image.save(path)
