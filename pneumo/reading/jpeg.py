"""A pydicom decoder plugin for the JPEG syntaxes that would otherwise need a GPL decoder: JPEG
baseline, 12-bit JPEG extended and JPEG lossless (process 14 and SV1), through imagecodecs
(BSD-licensed; libjpeg-turbo for baseline and extended, its own lossless JPEG decoder for process
14). `use()` adds it to pydicom's decoders once; pneumo.reading.decode calls it before decoding.

This module is not meant to be used directly (pydicom calls `is_available` and `_decode_frame`).
"""

from __future__ import annotations

from pydicom import uid

DECODER_DEPENDENCIES = {syntax: ("imagecodecs",) for syntax in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
                                                                uid.JPEGLosslessSV1)}
_added = False


def is_available(syntax: str) -> bool:
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    return syntax in DECODER_DEPENDENCIES


def _decode_frame(src: bytes, runner) -> bytes:
    """One frame's pixels, little-endian, in the container its precision needs."""
    import imagecodecs
    import numpy as np
    from pydicom.pixels.common import PhotometricInterpretation as PI

    try:
        frame = imagecodecs.jpeg8_decode(src)
    except Exception:  # noqa: BLE001 - libjpeg-turbo refuses some lossless streams: the lossless JPEG decoder reads them
        frame = imagecodecs.ljpeg_decode(src)
    frame = np.ascontiguousarray(frame)
    runner.set_option("bits_allocated", 8 if frame.dtype.itemsize == 1 else 16)
    if frame.ndim == 3 and frame.shape[-1] == 3:  # libjpeg-turbo converts colour to RGB, pixel by pixel
        runner.set_option("photometric_interpretation", PI.RGB)
        runner.set_option("planar_configuration", 0)
    return frame.astype(frame.dtype.newbyteorder("<"), copy=False).tobytes()


def use() -> None:
    """Add this plugin to pydicom's decoders for its syntaxes (once per process)."""
    global _added
    if _added:
        return
    from pydicom.pixels.decoders import base

    for syntax in DECODER_DEPENDENCIES:
        decoder = base.get_decoder(syntax)
        if "imagecodecs" not in decoder.available_plugins and "imagecodecs" not in getattr(decoder, "_available", {}):
            try:
                decoder.add_plugin("imagecodecs", ("pneumo.reading.jpeg", "_decode_frame"))
            except ValueError:  # already there
                pass
    _added = True
