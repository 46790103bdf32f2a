"""Reading SEM images: TIFF (with vendor metadata), PNG, BMP and JPEG.

:func:`read_image` detects the format from the file's content (magic bytes),
refuses unusable files with an :class:`~poromet.errors.ImageReadError` whose
message names the file and the problem, and returns a monochrome
:class:`~poromet.records.Image` with its metadata and the calibration the
metadata implies.  :func:`as_image` does the same for in-memory arrays.

The file is read once: its bytes are hashed (``Image.sha256``) and decoded
from memory.  Before anything is decoded, the image size declared in the
header (TIFF page, PNG ``IHDR``, JPEG ``SOF``, BMP header) is checked against
``max_pixels``, so a decompression bomb never gets allocated.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as _io
import logging
import os
import struct
import warnings
from pathlib import Path

import numpy as np

from .errors import ImageReadError
from .records import Image

__all__ = ["read_image", "as_image", "sniff_format", "MIN_SIZE", "SUPPORTED_FORMATS"]

#: Smallest accepted image edge, in pixels.
MIN_SIZE = 16
#: Formats :func:`read_image` decodes.
SUPPORTED_FORMATS = ("tiff", "png", "jpeg", "bmp")
_EXTENSIONS = {
    ".tif": "tiff", ".tiff": "tiff", ".png": "png", ".bmp": "bmp", ".dib": "bmp",
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg",
}
_SIGNATURES = (
    (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"),
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"%PDF", "PDF"), (b"PK\x03\x04", "ZIP archive"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
)
#: BT.601 luma weights (OpenCV, Pillow 'L', ImageJ "weighted" conversion).
_LUMA = np.array([0.299, 0.587, 0.114])


def _fail(where: str, problem: str) -> ImageReadError:
    return ImageReadError(f"{where}: {problem}")


def sniff_format(head: bytes) -> str | None:
    """Name the format of a file from its first bytes.

    Returns one of ``SUPPORTED_FORMATS``, the name of a recognised but
    unsupported format (e.g. ``'GIF'``), or None.

    Examples
    --------
    >>> sniff_format(b"\\x89PNG\\r\\n\\x1a\\n....")
    'png'
    >>> sniff_format(b"hello") is None
    True
    """
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


# -- header sizes (before decoding) -------------------------------------------

def _png_check(raw: bytes, where: str, max_pixels: int) -> tuple[int, int]:
    """Walk the PNG chunks: size from IHDR; truncated if IEND is not reached."""
    pos, size = 8, None
    while True:
        if pos + 8 > len(raw):
            raise _fail(where, "truncated PNG file (cut short before the IEND chunk)")
        length, ctype = struct.unpack(">I4s", raw[pos:pos + 8])
        if ctype == b"IHDR" and pos + 16 <= len(raw):
            size = struct.unpack(">II", raw[pos + 8:pos + 16])
            _check_size(int(size[1]), int(size[0]), where, max_pixels)
        if ctype == b"IEND":
            break
        pos += 12 + length
    if size is None:
        raise _fail(where, "corrupt PNG file (no IHDR chunk)")
    w, h = size
    return int(h), int(w)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_check(raw: bytes, where: str, max_pixels: int) -> tuple[int, int]:
    """Size from the SOF segment; truncated if no EOI follows the first scan."""
    pos, size = 2, None
    while True:
        while pos < len(raw) and raw[pos] == 0xFF and pos + 1 < len(raw) and raw[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(raw) or raw[pos] != 0xFF:
            raise _fail(where, "truncated or corrupt JPEG file (cut short in its header)")
        marker = raw[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", raw[pos + 2:pos + 4])
        if marker in _SOF and pos + 9 <= len(raw):
            h, w = struct.unpack(">HH", raw[pos + 5:pos + 9])
            size = (int(h), int(w))
            _check_size(*size, where, max_pixels)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise _fail(where, "corrupt JPEG file (no frame header before the image data)")
            if raw.find(b"\xff\xd9", pos + 2 + length) < 0:
                raise _fail(where, "truncated JPEG file (no end-of-image marker: the file was cut short)")
            return size
        if marker == 0xD9:
            raise _fail(where, "corrupt JPEG file (end of image before any image data)")
        pos += 2 + length


def _bmp_check(raw: bytes, where: str, max_pixels: int) -> tuple[int, int]:
    if len(raw) < 26:
        raise _fail(where, "truncated BMP file (header cut short)")
    offset, dib = struct.unpack("<II", raw[10:18])
    if dib == 12:
        w, h, _, bpp = struct.unpack("<HHHH", raw[18:26])
        compression = 0
    elif dib >= 40 and len(raw) >= 34:
        w, h, _, bpp, compression = struct.unpack("<iiHHI", raw[18:34])
    else:
        raise _fail(where, f"corrupt BMP file (unknown header size {dib})")
    w, h = abs(int(w)), abs(int(h))
    _check_size(h, w, where, max_pixels)
    if compression in (0, 3, 6) and bpp in (1, 4, 8, 16, 24, 32):
        needed = offset + ((w * bpp + 31) // 32) * 4 * h
        if len(raw) < needed:
            raise _fail(where, f"truncated BMP file ({len(raw)} bytes, the header needs {needed})")
    return h, w


#: Peak working memory of the measurement chain, bytes per pixel (measured:
#: 4096 x 3072 16-bit field, 332 MB peak RSS including the interpreter).
BYTES_PER_PIXEL = 24


def _available_memory() -> int | None:
    """Bytes of memory available now (None when the platform does not say)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(h: int, w: int, where: str) -> None:
    need = h * w * BYTES_PER_PIXEL
    avail = _available_memory()
    if avail is not None and need > avail:
        raise ImageReadError(
            f"{where}: a {w} x {h} image needs about {need / 2**30:.1f} GB of memory to "
            f"measure, and {avail / 2**30:.1f} GB are available; refused rather than run "
            "out of memory. Crop or downsample it, or measure it on a larger machine")


def _check_size(h: int, w: int, where: str, max_pixels: int) -> None:
    if h * w > max_pixels:
        raise _fail(where, f"image is {w} x {h} = {w * h:,} pixels, more than the limit of "
                           f"{max_pixels:,} (image.max_pixels); refused to guard against a "
                           "decompression bomb. Raise image.max_pixels if the file is genuine")
    if h * w > 20_000_000:             # only large fields can exhaust memory
        _check_memory(h, w, where)
    if h < MIN_SIZE or w < MIN_SIZE:
        raise _fail(where, f"image is only {w} x {h} pixels; the minimum is "
                           f"{MIN_SIZE} x {MIN_SIZE}")


# -- pixels -------------------------------------------------------------------

def _monochrome(data: np.ndarray, where: str, notes: list[str], *, bgr: bool = False) -> np.ndarray:
    """(H, W) monochrome array in uint8, uint16 or float32."""
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if data.ndim == 3 and data.shape[2] in (2, 3, 4):
        if data.shape[2] == 2:  # gray + alpha
            color = data[:, :, :1]
        else:
            color = data[:, :, :3][:, :, ::-1] if bgr else data[:, :, :3]
        alpha = data[:, :, -1] if data.shape[2] in (2, 4) else None
        if alpha is not None and alpha.min() != alpha.max():
            notes.append("alpha (transparency) channel ignored")
        spread = None
        if color.shape[2] == 3:
            spread = color.max(axis=2).astype(np.float64)
            spread -= color.min(axis=2)
        if spread is None or not spread.any():
            data = color[:, :, 0]
        else:
            tol = 2.0 if color.dtype == np.uint8 else 2.0 * 257 if color.dtype == np.uint16 else 0.0
            fraction = float(np.mean(spread > tol))
            luma = np.tensordot(color.astype(np.float64), _LUMA, axes=([2], [0]))
            if np.issubdtype(color.dtype, np.integer):
                luma = np.clip(np.rint(luma), 0, np.iinfo(color.dtype).max)
            data = luma.astype(color.dtype if color.dtype in (np.uint8, np.uint16) else np.float32)
            if fraction > 0.005:
                msg = (f"{where}: colour image (channels differ in {fraction:.1%} of the pixels) "
                       "converted to monochrome luminance (0.299 R + 0.587 G + 0.114 B)")
                warnings.warn(msg, UserWarning, stacklevel=3)
                notes.append(msg)
    if data.ndim != 2:
        raise _fail(where, f"expected a 2-D monochrome or RGB(A) image, got an array of shape "
                           f"{data.shape}")
    if data.dtype == bool:
        data = data.astype(np.uint8) * np.uint8(255)
    elif data.dtype not in (np.uint8, np.uint16, np.float32):
        if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
            raise _fail(where, f"unsupported pixel type {data.dtype}; allowed: integer or float")
        data = data.astype(np.float32)
    if data.dtype == np.float32:
        finite = np.isfinite(data)
        if not finite.all():
            if not finite.any():
                raise _fail(where, "no finite pixel values (all NaN or infinite)")
            n = int(data.size - np.count_nonzero(finite))
            data = np.where(finite, data, np.float32(np.median(data[finite])))
            msg = f"{where}: {n} NaN/infinite pixels replaced by the median value"
            warnings.warn(msg, UserWarning, stacklevel=3)
            notes.append(msg)
    h, w = data.shape
    if h < MIN_SIZE or w < MIN_SIZE:
        raise _fail(where, f"image is only {w} x {h} pixels; the minimum is {MIN_SIZE} x {MIN_SIZE}")
    lo, hi = data.min(), data.max()
    if lo == hi:
        raise _fail(where, f"constant image: all {data.size:,} pixels equal {lo.item()!r}; "
                           "there is nothing to threshold")
    return np.ascontiguousarray(data)


def _bit_depth(dtype: np.dtype) -> int:
    return {1: 8, 2: 16}.get(np.dtype(dtype).itemsize, 32)


def as_image(array, *, name: str = "<array>") -> Image:
    """Wrap an in-memory array as a monochrome :class:`~poromet.records.Image`.

    Parameters
    ----------
    array : array_like, shape (H, W) or (H, W, 3|4)
        uint8, uint16, other integer or float pixels; RGB(A) is converted to
        luminance (with a warning when the channels differ), bool to 0/255,
        other types to float32.
    name : str
        Used in error messages.

    Returns
    -------
    Image
        ``path`` None, ``sha256`` '', no calibration.

    Raises
    ------
    ImageReadError
        Not 2-D/RGB, smaller than ``MIN_SIZE``, constant, or no finite values.

    Examples
    --------
    >>> img = as_image(np.arange(32 * 32, dtype=np.uint16).reshape(32, 32))
    >>> img.data.dtype, img.bit_depth
    (dtype('uint16'), 16)
    """
    if isinstance(array, Image):
        return array
    arr = np.asarray(array)
    notes: list[str] = []
    data = _monochrome(arr, name, notes)
    return Image(data=data, path=None, bit_depth=_bit_depth(arr.dtype), warnings=tuple(notes))


# -- files ----------------------------------------------------------------------

def _read_bytes(path: Path, where: str) -> bytes:
    try:
        if path.is_dir():
            raise _fail(where, "is a directory, not an image file")
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise _fail(where, "file not found") from None
    except IsADirectoryError:
        raise _fail(where, "is a directory, not an image file") from None
    except PermissionError:
        raise _fail(where, "permission denied (cannot open the file for reading)") from None
    except OSError as exc:
        raise _fail(where, f"cannot read the file ({exc.strerror or exc})") from None


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _quiet_tifffile():
    """Collect tifffile's logged complaints and warnings instead of printing them."""
    logger = logging.getLogger("tifffile")
    handler = _LogCollector()
    old = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield handler.messages
        handler.messages.extend(str(w.message) for w in caught)
    finally:
        logger.removeHandler(handler)
        logger.propagate = old


def _read_tiff(raw: bytes, where: str, max_pixels: int, notes: list[str]):
    import tifffile

    from .calibrate import tiff_metadata

    deferred: list[str] = []  # warnings raised after tifffile's are no longer captured
    with _quiet_tifffile() as complaints:
        try:
            tif = tifffile.TiffFile(_io.BytesIO(raw))
        except Exception as exc:  # tifffile raises many types for corrupt files
            raise _fail(where, f"corrupt TIFF file ({exc})") from None
        with tif:
            if len(tif.pages) == 0:
                extra = f" ({complaints[0]})" if complaints else ""
                raise _fail(where, f"TIFF file with no readable image (zero pages){extra}; "
                                   "the file may be truncated or its first-page offset is bad")
            page = tif.pages.first
            axes, shape = page.axes, page.shape
            h = shape[axes.index("Y")] if "Y" in axes else 0
            w = shape[axes.index("X")] if "X" in axes else 0
            _check_size(int(h), int(w), where, max_pixels)
            if len(tif.pages) > 1:
                others = [p for p in list(tif.pages)[1:] if not (int(getattr(p, "subfiletype", 0)) & 1)]
                if others:
                    deferred.append(f"{where}: multi-page TIFF ({len(tif.pages)} pages); "
                                    "only the first page is measured")
            ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts)]
            if not ends or any(n == 0 for n in page.databytecounts) or max(ends) > len(raw):
                raise _fail(where, f"truncated TIFF file: image data needs {max(ends, default=0):,} "
                                   f"bytes but the file has {len(raw):,} (strips/tiles missing)")
            try:
                data = page.asarray()
            except Exception as exc:
                raise _fail(where, f"cannot decode the TIFF image data ({exc})") from None
            if "S" in axes and axes.index("S") == 0 and data.ndim == 3:
                data = np.moveaxis(data, 0, -1)
            if page.photometric == 3 and page.colormap is not None:  # palette
                cmap = np.asarray(page.colormap)
                rgb = cmap[:, data].transpose(1, 2, 0) if cmap.ndim == 2 else cmap[data]
                data = (rgb >> 8).astype(np.uint8) if data.dtype == np.uint8 else rgb
            elif page.photometric == 0 and np.issubdtype(data.dtype, np.integer):
                notes.append("MINISWHITE photometric: gray levels inverted to the usual sense")
                data = np.iinfo(data.dtype).max - data
            metadata = tiff_metadata(tif, raw)
    for msg in deferred:
        warnings.warn(msg, UserWarning, stacklevel=3)
        notes.append(msg)
    return data, metadata


def _decode_cv2(raw: bytes, where: str, fmt: str) -> np.ndarray:
    import cv2

    buf = np.frombuffer(raw, dtype=np.uint8)
    try:
        data = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise _fail(where, f"cannot decode the {fmt.upper()} image ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if data is None:
        raise _fail(where, f"corrupt {fmt.upper()} file (the decoder could not read it)")
    return data


def read_image(path, *, max_pixels: int = 250_000_000) -> Image:
    """Read an SEM image file as a monochrome :class:`~poromet.records.Image`.

    Parameters
    ----------
    path : str or path-like
        A TIFF (8/16/32-bit integer or float, grayscale, palette, RGB(A);
        multi-page: the first page, with a warning), PNG (8/16-bit), BMP or
        JPEG file.  The format is taken from the content, not the extension
        (a mismatch gives a warning).
    max_pixels : int
        Largest accepted ``width * height``, checked in the header before
        any pixel is decoded.

    Returns
    -------
    Image
        ``data`` (H, W) uint8, uint16 or float32; ``sha256`` of the file's
        bytes; ``metadata`` with the format, vendor metadata (``'fei'``,
        ``'fei_xml'``, ``'zeiss'``), resolution tags and an instrument
        ``'summary'``; ``calibration`` from the metadata
        (:func:`poromet.calibrate.calibration_from_metadata`).

    Raises
    ------
    ImageReadError
        Missing file, directory, permission denied, empty, not an image,
        truncated or corrupt, larger than ``max_pixels``, smaller than
        16 x 16, constant.  The message starts with the file path.

    Warns
    -----
    UserWarning
        Multi-page TIFF, extension not matching the content, colour image,
        NaN pixels.  The same texts are kept in ``Image.warnings``.
    """
    from .calibrate import calibration_from_metadata

    p = Path(os.fspath(path)).expanduser()
    with contextlib.suppress(OSError):
        p = p.absolute()
    where = str(p)
    raw = _read_bytes(p, where)
    sha = hashlib.sha256(raw).hexdigest()
    if not raw:
        raise _fail(where, "empty file (0 bytes)")
    fmt = sniff_format(raw[:16])
    if fmt is None:
        raise _fail(where, f"not an image file (unrecognised content); supported formats: "
                           f"{', '.join(f.upper() for f in SUPPORTED_FORMATS)}")
    if fmt not in SUPPORTED_FORMATS:
        raise _fail(where, f"is a {fmt} file; supported formats: "
                           f"{', '.join(f.upper() for f in SUPPORTED_FORMATS)}")
    notes: list[str] = []
    ext = p.suffix.lower()
    if _EXTENSIONS.get(ext) != fmt:
        msg = (f"{where}: extension {ext or '(none)'!r} does not match the content, "
               f"which is {fmt.upper()}; read as {fmt.upper()}")
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
    metadata: dict = {}
    if fmt == "tiff":
        data, metadata = _read_tiff(raw, where, max_pixels, notes)
        bgr = False
    else:
        check = {"png": _png_check, "jpeg": _jpeg_check, "bmp": _bmp_check}[fmt]
        check(raw, where, max_pixels)
        data = _decode_cv2(raw, where, fmt)
        bgr = True
    metadata = {"format": fmt, **metadata}
    depth = _bit_depth(data.dtype)
    mono = _monochrome(data, where, notes, bgr=bgr)
    cal = calibration_from_metadata(metadata, mono.shape)
    return Image(data=mono, path=where, bit_depth=depth, calibration=cal,
                 metadata=metadata, sha256=sha, warnings=tuple(notes))
