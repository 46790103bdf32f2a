"""Connected components with their areas, the fast way OpenCV allows.

OpenCV's ``connectedComponentsWithStats`` spends most of its time on the
statistics (with any of its algorithms); the labels alone and a histogram of
them give the same components and the same areas in a third of the time:

* :func:`label_areas` - labels only (16-bit when they fit), areas from a
  histogram of the labels;
* :func:`remove_small` - speck removal on top of it.

Label *numbers* may differ between algorithms; callers only use them to
group pixels, never their order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_areas", "remove_small"]


def label_areas(mask: np.ndarray, *, connectivity: int = 8):
    """Connected components of a boolean mask and their areas.

    Returns
    -------
    n : int
        Number of labels, the background (label 0) included.
    labels : ndarray of uint16 or int32, shape (H, W)
    areas : ndarray of int64, shape (n,)
        Pixels per label (``areas[0]``: the background).

    Examples
    --------
    >>> m = np.zeros((5, 6), bool); m[0, 0] = True; m[2:4, 2:5] = True
    >>> n, lab, areas = label_areas(m)
    >>> n, areas.tolist()
    (3, [23, 1, 6])
    """
    import cv2

    u8 = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    if u8.size < 2 ** 24:                # float32 histogram counts are exact
        try:
            n, lab = cv2.connectedComponents(u8, connectivity=connectivity, ltype=cv2.CV_16U)
        except cv2.error:                # more than 65535 labels
            pass
        else:
            areas = cv2.calcHist([lab], [0], None, [n], [0, n]).ravel().astype(np.int64)
            return n, lab, areas
    n, lab = cv2.connectedComponents(u8, connectivity=connectivity, ltype=cv2.CV_32S)
    return n, lab, np.bincount(lab.ravel(), minlength=n).astype(np.int64)


def remove_small(mask: np.ndarray, min_area: int, *, connectivity: int = 8) -> np.ndarray:
    """Clear the connected components of ``mask`` with fewer than
    ``min_area`` pixels, in place; returns ``mask``.

    Labels and areas come from :func:`label_areas`; the small components'
    pixels are found by one lookup of every pixel's label (OpenCV's
    statistics, which give the components' boxes, cost three times that).

    Examples
    --------
    >>> m = np.zeros((5, 6), bool); m[0, 0] = True; m[2:4, 2:5] = True
    >>> int(remove_small(m, 2).sum())
    6
    """
    n, lab, areas = label_areas(mask, connectivity=connectivity)
    small = areas < min_area
    small[0] = False
    if n > 1 and small.any():
        mask[small[lab]] = False
    return mask
