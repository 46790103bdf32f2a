"""The compiled kernels behind :mod:`poromet.kernels` (imports Numba: load
this module only through :func:`poromet.kernels.available`)."""

import math

import numba as nb
import numpy as np

# error_model='numpy': a float division by zero is inf, not a check per
# division (which kept LLVM from vectorizing the loops)
jit = nb.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")


@jit
def _reflect(r, H):
    """Row ``r`` with OpenCV's default border (reflect 101)."""
    if r < 0:
        return -r
    if r >= H:
        return 2 * H - 2 - r
    return r



@jit
def hrange(row, mx, mn):
    # max and min over x-2..x+2 (clipped to the row); the interior as
    # five shifted views, so that the loop has no index arithmetic
    W = row.size
    for x in range(min(2, W)):
        b = min(W, x + 3)
        mx[x] = row[:b].max()
        mn[x] = row[:b].min()
    for x in range(max(2, W - 2), W):
        a = max(0, x - 2)
        mx[x] = row[a:].max()
        mn[x] = row[a:].min()
    m = W - 4
    if m <= 0:
        return
    r0 = row[0:m]
    r1 = row[1:m + 1]
    r2 = row[2:m + 2]
    r3 = row[3:m + 3]
    r4 = row[4:m + 4]
    o = mx[2:m + 2]
    u = mn[2:m + 2]
    for i in range(m):
        a = r0[i]
        b = r1[i]
        c = r2[i]
        d = r3[i]
        e = r4[i]
        o[i] = max(max(max(a, b), max(c, d)), e)
        u[i] = min(min(min(a, b), min(c, d)), e)


@jit
def hderiv(row, dx, sx, d2):
    # per row: x-difference, [1 2 1] smoothing and [1 -2 1] second
    # difference, with OpenCV's default border (reflect 101)
    W = row.size
    two = np.float32(2.0)
    for x in (0, W - 1):
        xl = x - 1 if x > 0 else 1
        xr = x + 1 if x < W - 1 else W - 2
        a = row[xl]
        c = row[xr]
        m = row[x]
        dx[x] = c - a
        sx[x] = (a + c) + two * m
        d2[x] = (a + c) - two * m
    m = W - 2
    left = row[0:m]
    mid = row[1:m + 1]
    right = row[2:m + 2]
    odx = dx[1:m + 1]
    osx = sx[1:m + 1]
    od2 = d2[1:m + 1]
    for i in range(m):
        a = left[i]
        c = right[i]
        b = two * mid[i]
        odx[i] = c - a
        osx[i] = (a + c) + b
        od2[i] = (a + c) - b


@jit
def codes(img, reg, k, curv, scaled, want_grad, code, grad):
    H, W = img.shape
    f0 = np.float32(0.0)
    one = np.float32(1.0)
    two = np.float32(2.0)
    q = np.float32(0.125)
    h = np.float32(0.25)
    eps = np.float32(1e-2)
    t = k[0]
    near_l = k[1]
    edge_t = k[2]
    blob_t = k[3]
    bright_l = k[4]
    depth_l = k[5]
    expk = k[6]
    c_rng = k[7]
    c_mn = k[8]
    c_s = k[9]
    cs = k[10]
    pb = k[11]
    nb_ = k[12]
    # ring buffers over rows: horizontal max/min and the Sobel row
    # terms of rows y-1, y, y+1
    MX = np.empty((3, W), np.float32)
    MN = np.empty((3, W), np.float32)
    DX = np.empty((3, W), np.float32)
    SX = np.empty((3, W), np.float32)
    D2 = np.empty((3, W), np.float32)
    TT = np.empty(W, np.float32)
    GS = np.empty(W, np.float32)      # the gradient row when none is wanted
    BL = np.empty(W, np.uint8)
    for r in range(-1, 1):
        i = (r + 3) % 3
        hrange(img[max(r, 0)], MX[i], MN[i])
        hderiv(img[_reflect(r, H)], DX[i], SX[i], D2[i])
    for y in range(H):
        if y + 1 < H:
            i = (y + 4) % 3
            hrange(img[y + 1], MX[i], MN[i])
        i = (y + 4) % 3
        hderiv(img[_reflect(y + 1, H)], DX[i], SX[i], D2[i])
        p = (y + 2) % 3            # row y - 1
        c = (y + 3) % 3            # row y
        n = (y + 4) % 3            # row y + 1
        # the window's rows; a row outside the image is replaced by
        # row y itself (max(a, a) = a), so the loops have no branches
        mxc = MX[c]
        mnc = MN[c]
        mxp = MX[p] if y > 0 else mxc
        mnp = MN[p] if y > 0 else mnc
        mxn = MX[n] if y + 1 < H else mxc
        mnn = MN[n] if y + 1 < H else mnc
        row = img[y]
        up2 = img[y - 2] if y > 1 else row
        dn2 = img[y + 2] if y + 2 < H else row
        nblob = 0
        for x in range(W):
            hi = max(max(max(mxp[x], mxc[x]), max(mxn[x], up2[x])), dn2[x])
            lo = min(min(min(mnp[x], mnc[x]), min(mnn[x], up2[x])), dn2[x])
            rng = hi - lo
            near = lo < near_l
            edge0 = rng > edge_t
            te = (rng * c_rng + lo * c_mn) + c_s
            TT[x] = te if (near & edge0) else t
            blob = (near & (not edge0) & (rng > blob_t) & ((lo + rng) > bright_l)
                    & (lo < depth_l))
            BL[x] = blob
            nblob += blob
        if nblob:
            for x in range(W):
                if BL[x]:
                    hi = max(max(max(mxp[x], mxc[x]), max(mxn[x], up2[x])), dn2[x])
                    lo = min(min(min(mnp[x], mnc[x]), min(mnn[x], up2[x])), dn2[x])
                    rng = hi - lo
                    lev = lo + (one - np.float32(math.exp(rng * expk))) * rng
                    TT[x] = lev if lev > t else t
        dxp = DX[p]
        dxc = DX[c]
        dxn = DX[n]
        sxp = SX[p]
        sxc = SX[c]
        sxn = SX[n]
        d2p = D2[p]
        d2c = D2[c]
        d2n = D2[n]
        out = code[y]
        rg = reg[y]
        gr = grad[y] if want_grad else GS
        if curv:
            for x in range(W):
                ix = (dxp[x] + two * dxc[x] + dxn[x]) * q
                iy = (sxn[x] - sxp[x]) * q
                g2 = ix * ix + iy * iy
                ixx = (d2p[x] + two * d2c[x] + d2n[x]) * h
                iyy = ((sxp[x] + sxn[x]) - two * sxc[x]) * h
                ixy = (dxn[x] - dxp[x]) * h
                num = ixx * iy * iy
                num = num - two * ixy * ix * iy
                num = num + iyy * ix * ix
                den = ix * ix
                den = den + iy * iy
                den = den + eps
                num = num / den
                if scaled:
                    num = num * cs
                TT[x] = TT[x] + num
                if want_grad:
                    gr[x] = np.float32(math.sqrt(g2))
        elif want_grad:
            for x in range(W):
                ix = (dxp[x] + two * dxc[x] + dxn[x]) * q
                iy = (sxn[x] - sxp[x]) * q
                gr[x] = np.float32(math.sqrt(ix * ix + iy * iy))
        for x in range(W):
            d = TT[x] - row[x]
            v = np.uint8((d > nb_) + (d > f0) + (d > pb))
            out[x] = v if rg[x] else np.uint8(0)
    return 0


@jit
def keep(code, level, min_area, out):
    # out: 0 unknown / not in the mask, 1 kept (a component of at
    # least min_area pixels), 2 a speck, 3 on the current search
    H, W = code.shape
    out[:] = 0
    qy = np.empty(min_area, np.int32)
    qx = np.empty(min_area, np.int32)
    for y0 in range(H):
        for x0 in range(W):
            if code[y0, x0] < level or out[y0, x0] != 0:
                continue
            # next to a pixel of a large void (the usual case): large too
            if ((x0 > 0 and out[y0, x0 - 1] == 1)
                    or (y0 > 0 and (out[y0 - 1, x0] == 1
                                    or (x0 > 0 and out[y0 - 1, x0 - 1] == 1)
                                    or (x0 + 1 < W and out[y0 - 1, x0 + 1] == 1)))):
                out[y0, x0] = 1
                continue
            if min_area <= 1:
                out[y0, x0] = 1
                continue
            n = 1
            qy[0] = y0
            qx[0] = x0
            out[y0, x0] = 3
            head = 0
            big = False
            while head < n and not big:
                y = qy[head]
                x = qx[head]
                head += 1
                for dy in range(-1, 2):
                    yy = y + dy
                    if yy < 0 or yy >= H:
                        continue
                    for dx in range(-1, 2):
                        xx = x + dx
                        if xx < 0 or xx >= W or code[yy, xx] < level:
                            continue
                        s = out[yy, xx]
                        if s == 3:
                            continue
                        if s == 1:
                            big = True
                            break
                        qy[n] = yy
                        qx[n] = xx
                        out[yy, xx] = 3
                        n += 1
                        if n >= min_area:
                            big = True
                            break
                    if big:
                        break
            mark = np.uint8(1 if big else 2)
            for i in range(n):
                out[qy[i], qx[i]] = mark
    for y in range(H):
        for x in range(W):
            if out[y, x] != 1:
                out[y, x] = 0
    return 0


@jit
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:              # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@jit
def patch_runs(pores, region, img, grad, border):
    """The 4-connected non-void patches (``region & ~pores``) as row runs.

    Returns ``(ry, rs, re, rid, cnt, sums, bcnt, bsum)``: each run's row,
    start, end (exclusive) and patch number (1..n-1, in the order of each
    patch's first pixel, as a labelling numbers them), and per patch number
    (index 0 unused) the pixel count, the sum of ``img``, and over its
    border pixels (``border``: 8-adjacent to a void) the count and the sum
    of ``grad``.  No label image is made: a field has a few runs per row
    and pore, and the union-find works on them.
    """
    H, W = pores.shape
    # runs counted first (a transition count, no branches), then stored:
    # arrays grown inside the loop cost reference counting on every pixel
    row_start = np.empty(H + 1, np.int64)
    nr = 0
    for y in range(H):
        row_start[y] = nr
        pr = pores[y]
        rg = region[y]
        prev = False
        for x in range(W):
            v = rg[x] and not pr[x]
            nr += v and not prev
            prev = v
    ry = np.empty(nr, np.int32)
    rs = np.empty(nr, np.int32)
    re = np.empty(nr, np.int32)
    for y in range(H):
        i = row_start[y]
        pr = pores[y]
        rg = region[y]
        prev = False
        for x in range(W):
            v = rg[x] and not pr[x]
            if v and not prev:
                ry[i] = y
                rs[i] = x
            elif prev and not v:
                re[i] = x
                i += 1
            prev = v
        if prev:
            re[i] = W
    row_start[H] = nr
    parent = np.arange(nr)
    for y in range(1, H):
        a = row_start[y - 1]
        a_end = row_start[y]
        b = row_start[y]
        b_end = row_start[y + 1]
        while a < a_end and b < b_end:
            if rs[a] < re[b] and rs[b] < re[a]:          # overlap: 4-connected
                ra = _find(parent, a)
                rb = _find(parent, b)
                if ra != rb:
                    if ra < rb:
                        parent[rb] = ra
                    else:
                        parent[ra] = rb
            if re[a] < re[b]:
                a += 1
            else:
                b += 1
    # patch numbers in the order of the patches' first runs
    rid = np.empty(nr, np.int32)
    num = np.zeros(nr, np.int32)
    n = 1
    for i in range(nr):
        r = _find(parent, i)
        if num[r] == 0:
            num[r] = n
            n += 1
        rid[i] = num[r]
    cnt = np.zeros(n, np.int64)
    sums = np.zeros(n, np.float64)
    bcnt = np.zeros(n, np.int64)
    bsum = np.zeros(n, np.float64)
    for i in range(nr):
        y = ry[i]
        l = rid[i]
        acc = 0.0
        bacc = 0.0
        bc = 0
        im = img[y]
        bd = border[y]
        gr = grad[y]
        for x in range(rs[i], re[i]):
            acc += im[x]
            if bd[x]:
                bc += 1
                bacc += gr[x]
        cnt[l] += re[i] - rs[i]
        sums[l] += acc
        bcnt[l] += bc
        bsum[l] += bacc
    return ry, rs, re, rid, cnt, sums, bcnt, bsum


@jit
def run_border_values(ry, rs, re, rid, border, grad, select, total):
    """``grad`` at the ``border`` pixels of the ``select``-ed patches (by
    number), in pixel order; ``total``: how many there are."""
    out = np.empty(total, np.float32)
    k = 0
    for i in range(ry.size):
        if not select[rid[i]]:
            continue
        y = ry[i]
        for x in range(rs[i], re[i]):
            if border[y, x] and k < total:
                out[k] = grad[y, x]
                k += 1
    return out[:k]


@jit
def paint_runs(pores, ry, rs, re, rid, fill):
    """``pores`` with the runs of the ``fill``-ed patches added (a copy)."""
    out = pores.copy()
    for i in range(ry.size):
        if fill[rid[i]]:
            out[ry[i], rs[i]:re[i]] = True
    return out


@jit
def rounded_hist(v, region):
    """(256-bin histogram of ``floor(v + 0.5)`` (in double precision, the
    bin clipped to 0..255) over ``region``, False) for float32 ``v``;
    (zeros, True) when a value in the region is not finite."""
    H, W = v.shape
    hist = np.zeros(256, np.int64)
    for y in range(H):
        row = v[y]
        rg = region[y]
        for x in range(W):
            if not rg[x]:
                continue
            a = np.float64(row[x])
            if not (a > -np.inf and a < np.inf):
                return np.zeros(256, np.int64), True
            b = math.floor(a + 0.5)
            if b < 0:
                b = 0
            elif b > 255:
                b = 255
            hist[int(b)] += 1
    return hist, False


@jit
def hist_uniform(v, region, nbins, a, b):
    """(histogram of ``floor(double(v) * a + b)`` over ``region`` (``region``
    of shape (1, 1): every pixel), the region pixels outside ``[0, nbins)``
    or NaN): OpenCV's uniform bins (``a = nbins / (hi - lo)``, ``b = -lo *
    a``; integer data with ``a = 1``, ``b = 0``: the value is the bin)."""
    H, W = v.shape
    hist = np.zeros(nbins, np.int64)
    every = region.shape[0] == 1 and region.shape[1] == 1 and (H != 1 or W != 1)
    lost = 0
    for y in range(H):
        row = v[y]
        rg = region[0] if every else region[y]
        for x in range(W):
            if every or rg[x]:
                z = math.floor(np.float64(row[x]) * a + b)
                if z >= 0 and z < nbins:
                    hist[int(z)] += 1
                else:
                    lost += 1
    return hist, lost


@jit
def fine_hist(v, region, nbins):
    """``(n, top, hist, ok)`` of :func:`poromet.adaptive._fine_histogram`
    for float32 ``v`` (any strides): the ``n`` pixels of ``region``, their
    maximum ``top`` (at least 1e-6) and the histogram of
    ``int(float32(v * float32((nbins - 1e-3) / top)))``; ``ok`` is False
    (use the reference) when a value is negative, not finite or falls
    beyond the last bin."""
    H, W = v.shape
    n = 0
    lo = np.inf
    hi = -np.inf
    for y in range(H):
        for x in range(W):
            if region[y, x]:
                t = np.float64(v[y, x])
                n += 1
                if t < lo:
                    lo = t
                if t > hi:
                    hi = t
    hist = np.zeros(nbins, np.int64)
    if n == 0 or not lo >= 0 or not np.isfinite(hi):
        return n, hi, hist, False
    top = hi if hi > 1e-6 else 1e-6
    s = np.float32((nbins - 1e-3) / top)
    for y in range(H):
        for x in range(W):
            if region[y, x]:
                i = int(v[y, x] * s)
                if i >= nbins:
                    return n, top, hist, False
                hist[i] += 1
    return n, top, hist, True


@jit
def _clip(t, lo, hi):
    """NumPy's clip of one value: ``min(max(t, lo), hi)`` as NumPy orders it."""
    t = t if t > lo else lo
    return t if t < hi else hi


@jit
def unit_scale(data, lo, s, out):
    """``out = clip((float32(data) - lo) * s, 0, 1.5)`` in float32, as
    :func:`poromet.adaptive._robust_unit` computes it."""
    H, W = data.shape
    z = np.float32(0.0)
    top = np.float32(1.5)
    for y in range(H):
        d = data[y]
        o = out[y]
        for x in range(W):
            o[x] = _clip((np.float32(d[x]) - lo) * s, z, top)
    return 0


@jit
def divide_scale_clip(f, bg, s):
    """``f = clip((f / bg) * s, 0, 255)`` in place, in float32 (the last
    steps of :func:`poromet.adaptive.normalize_field`; ``f`` has no NaN)."""
    H, W = f.shape
    z = np.float32(0.0)
    top = np.float32(255.0)
    for y in range(H):
        r = f[y]
        g = bg[y]
        for x in range(W):
            r[x] = _clip((r[x] / g[x]) * s, z, top)
    return 0


@jit
def _pair_bins(img, region, thr, hist, collect, j0, j1, out):
    # the pairs of horizontal neighbours both in the region and above thr:
    # with collect False the histogram of floor(256 |d|) and the number of
    # pairs (those with |d| >= 256 or NaN counted apart), else the |d| in
    # bins j0..j1 written to out (their number returned).  |d| * 256 is
    # exact in float32, so its truncation is the bin.
    H, W = img.shape
    n = 0
    bad = 0
    s = np.float32(256.0)
    top = np.float32(65536.0)
    ok = np.empty(W, np.uint8)
    for y in range(H):
        row = img[y]
        rg = region[y]
        for x in range(W):
            ok[x] = rg[x] & (row[x] > thr)
        for x in range(1, W):
            if ok[x] & ok[x - 1]:
                z = abs(row[x] - row[x - 1]) * s
                if not z < top:
                    bad += 1
                    continue
                b = np.int32(z)
                if collect:
                    if b >= j0 and b <= j1:
                        out[n] = z / s
                        n += 1
                else:
                    hist[b] += 1
                    n += 1
    return n, bad


@jit
def pair_median(img, region, thr):
    """(pairs, median): the number of horizontal neighbour pairs of ``img``
    both in ``region`` and above ``thr``, and NumPy's median (float32) of
    their absolute differences, from a histogram of 1/256-gray-level bins
    and a sort of the one or two bins that hold the middle; (-1, 0) when a
    difference is 256 or more."""
    hist = np.zeros(65536, np.int32)
    empty = np.empty(0, np.float32)
    n, bad = _pair_bins(img, region, thr, hist, False, 0, 0, empty)
    if bad:
        return -1, np.float32(0.0)
    if n == 0:
        return 0, np.float32(0.0)
    k0 = n // 2 - 1 if n % 2 == 0 else n // 2
    k1 = n // 2
    # the bins of the order statistics k0 and k1 (0-based)
    cum = 0
    j0 = -1
    j1 = -1
    below0 = 0
    for j in range(65536):
        c = hist[j]
        if j0 < 0 and cum + c > k0:
            j0 = j
            below0 = cum
        if cum + c > k1:
            j1 = j
            break
        cum += c
    m = 0
    for j in range(j0, j1 + 1):
        m += hist[j]
    cand = np.empty(m, np.float32)
    _pair_bins(img, region, thr, hist, True, j0, j1, cand)
    cand.sort()
    a = cand[k0 - below0]
    b = cand[k1 - below0]
    if k0 == k1:
        return n, a
    return n, np.float32(a + b) / np.float32(2.0)
