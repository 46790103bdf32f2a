"""The SEM info bar (the data bar at the bottom of an image), from its pixels.

:func:`poromet.calibrate.calibrate` uses :func:`detect_info_bar` when the
metadata do not give the bar's height; both names are also importable from
:mod:`poromet.calibrate`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["detect_info_bar", "INFO_BAR_MAX_FRACTION"]

#: Detected info bars are never taller than this fraction of the image.
INFO_BAR_MAX_FRACTION = 0.25
_MIN_IMAGE_ROWS = 16


def _row_modes(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent value of each row and the fraction of the row it covers
    (ties: the smallest value)."""
    r, w = block.shape
    if block.dtype == np.uint8:
        # one histogram per row (a bincount over row * 256 + value)
        idx = block.astype(np.intp)
        idx += (np.arange(r, dtype=np.intp) * 256)[:, None]
        counts = np.bincount(idx.ravel(), minlength=r * 256).reshape(r, 256)
        return counts.argmax(axis=1).astype(np.uint8), counts.max(axis=1) / w
    # One sort of all rows (a radix sort for 16-bit data), then the longest
    # run of equal values per row.
    s = np.sort(block, axis=1, kind="stable")
    start = np.ones((r, w), bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    pos = np.flatnonzero(start.ravel())
    lengths = np.empty_like(pos)
    np.subtract(pos[1:], pos[:-1], out=lengths[:-1])
    lengths[-1] = r * w - pos[-1]
    rows = pos // w
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    best = np.maximum.reduceat(lengths, first)
    hit = np.flatnonzero(lengths == best[rows])
    rh = rows[hit]
    j = hit[np.r_[True, rh[1:] != rh[:-1]]]            # first (smallest) per row
    return s.ravel()[pos[j]], best / w


def _mode(values: np.ndarray):
    """Most frequent value of a small array (ties: the smallest)."""
    s = np.sort(values)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return s[starts[np.argmax(np.diff(np.r_[starts, s.size]))]]


def detect_info_bar(data: np.ndarray, *, max_fraction: float = INFO_BAR_MAX_FRACTION) -> int:
    """Height of the SEM data bar at the bottom of an image, from its pixels.

    A data bar is a full-width band at the very bottom whose background is
    one exact gray level (rendered, so noise-free), holding high-contrast
    text or a scale bar, and separated from the micrograph above by a sharp
    edge or a frame line.  Detection is conservative: anything else (noisy
    dark or bright bottom rows, clipped pores, flat synthetic images whose
    "bar" would run past ``max_fraction`` of the height) gives 0.

    Parameters
    ----------
    data : ndarray, shape (H, W)
        Monochrome image, any dtype.
    max_fraction : float
        Largest bar accepted, as a fraction of the height.

    Returns
    -------
    int
        Rows to remove at the bottom (0: no bar found).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.integers(60, 200, (200, 300)).astype(np.uint8)
    >>> img[170:] = 0; img[180:190, 20:60:3] = 255; img[180:190, 200:260:4] = 255
    >>> detect_info_bar(img)
    30
    >>> detect_info_bar(rng.integers(0, 256, (200, 300)).astype(np.uint8))
    0
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] < 4 * _MIN_IMAGE_ROWS:
        return 0
    h, w = data.shape
    cap = int(h * max_fraction)
    n = min(h, cap + 8)
    block = data[h - n:][::-1]  # index 0 = bottom row
    # the bottom 40 rows decide whether there is a bar at all: most fields
    # have none, and the other rows' modes are then not needed
    modes, frac = _row_modes(block[:40])
    if np.count_nonzero(frac >= 0.4) < 4:
        return 0
    # the rows above, 40 at a time, only as far as a bar can reach: the scan
    # below stops at the first row e >= 3 that is not bar-like and reads at
    # most 5 rows past it
    while len(frac) < n:
        flat = np.flatnonzero(frac[3:] < 0.4)
        if flat.size and len(frac) >= flat[0] + 3 + 5:
            break
        more_modes, more_frac = _row_modes(block[len(frac):len(frac) + 40])
        modes, frac = np.concatenate([modes, more_modes]), np.concatenate([frac, more_frac])
    bar_like = frac >= 0.4
    # background = the most common mode among bar-like bottom rows
    cand = modes[:min(n, 40)][bar_like[:min(n, 40)]]
    if cand.size < 4:
        return 0
    bg = _mode(cand)
    line = frac >= 0.97
    i = 0
    while i < 3 and i < n and not (line[i] or (bar_like[i] and modes[i] == bg)):
        i += 1  # a few junk rows under the frame (Zeiss keeps one image row)
    start, other_run = i, 0
    while i < n:
        if modes[i] == bg and bar_like[i]:
            if other_run and not line[i]:
                break  # a frame line is followed by a blank margin inside the bar, not by texture
            other_run = 0
        elif line[i] and other_run < 6:
            other_run += 1  # frame line in another gray level
        else:
            break
        i += 1
    # a thick block of another uniform gray is not a frame line: leave it out
    height = i - other_run if (i < n and other_run and line[i]) else i
    if i >= n or height > cap or height - start < 8:
        return 0
    band = data[h - height:h - start]
    rows_uniform = int(np.count_nonzero(line[start:height]))
    rows_text = int(np.count_nonzero((frac[start:height] < 0.97) & (modes[start:height] == bg)))
    if rows_uniform < 2 or rows_text < 2:
        return 0
    # the micrograph above is textured and does not share the bar's exact background
    # (a frame line in another gray makes the edge certain: allow a more saturated image)
    framed = bool(line[height - 1] and modes[height - 1] != bg)
    above = data[max(0, h - height - 5):h - height]
    if above.size == 0 or float(np.mean(above == bg)) > (0.6 if framed else 0.35):
        return 0
    if float(np.mean(frac[height:height + 5])) > 0.6:
        return 0  # flat (rendered or blanked) image above: not a micrograph with a bar
    # text and scale bars are drawn in high contrast against the background
    lo, hi = _percentiles(data[: h - height], [0.5, 99.5]) if h - height > 0 else (0, 0)
    span = max(float(hi) - float(lo), float(np.ptp(band)), 1e-12)
    fg_mask = band != bg
    fg = band[fg_mask].astype(np.float64)
    if fg.size == 0 or float(np.mean(np.abs(fg - float(bg)) >= 0.35 * span)) < 0.5:
        return 0
    # glyph strokes are connected; isolated specks (salt noise on a clipped region) are not
    padded = np.pad(fg_mask, 1)
    neighbours = sum(padded[1 + dy:padded.shape[0] - 1 + dy, 1 + dx:padded.shape[1] - 1 + dx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    if float(np.mean(neighbours[fg_mask] > 0)) < 0.6:
        return 0
    return int(height)


def _percentiles(data: np.ndarray, q) -> list[float]:
    from .histq import percentile_int

    p = percentile_int(data, None, q)          # NumPy's values, from a histogram
    return list(np.percentile(data, q)) if p is None else p
