"""What an image may be (a path, encoded bytes, a NumPy array, a PIL image) and how
it travels in a request, for both clients: the limits are checked before a file is
read or an array copied."""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import TYPE_CHECKING, Union

import numpy as np

from atelier.v1 import common_pb2

if TYPE_CHECKING:
    import PIL.Image

ImageLike = Union[str, os.PathLike, bytes, np.ndarray, "PIL.Image.Image", common_pb2.Image]

MAX_MESSAGE_BYTES = 64 << 20

# One image: a request's limit less room for the rest of it, as the Go CLI's. A file
# larger than that fails by its size, before it is read.
MAX_IMAGE_BYTES = MAX_MESSAGE_BYTES - (1 << 20)
_OVER = (f"over the {MAX_IMAGE_BYTES}-byte limit of one image (the 64 MiB request limit, "
         "less room for the rest of the request)")


def to_image(image: ImageLike) -> common_pb2.Image:
    """Converts a path, encoded bytes, a PIL image or an HxWx3 / HxW uint8 array.

    An image over MAX_IMAGE_BYTES raises ValueError before it is read or copied (a
    file by its size); so does a path that is not a regular file (a FIFO would wait
    for a writer, /dev/zero never end): read it and pass the bytes."""
    if isinstance(image, common_pb2.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return common_pb2.Image(encoded=_read_file(image))
    if isinstance(image, bytes):
        if len(image) > MAX_IMAGE_BYTES:
            raise ValueError(f"the image is {len(image)} bytes, {_OVER}")
        return common_pb2.Image(encoded=image)
    if isinstance(image, np.ndarray):
        image = np.asarray(image)  # a np.matrix stays 2-D through np.repeat
        if image.dtype != np.uint8:
            raise TypeError(f"arrays must be uint8, not {image.dtype}")
        if image.ndim not in (2, 3) or image.ndim == 3 and image.shape[2] != 3:
            raise ValueError(f"arrays must be HxW or HxWx3, not {image.shape}")
        h, w = image.shape[:2]
        if h * w == 0:
            raise ValueError(f"arrays must hold at least one pixel, not {image.shape}")
        if h * w * 3 > MAX_IMAGE_BYTES:  # before the copy: a broadcast array takes no memory
            raise ValueError(f"a {h}x{w} array is {h * w * 3} bytes as RGB, {_OVER}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        return common_pb2.Image(raw=common_pb2.RawImage(
            rgb=np.ascontiguousarray(image).tobytes(), width=w, height=h))
    if hasattr(image, "save"):  # PIL.Image.Image
        mode = getattr(image, "mode", "")
        if mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "PA"):  # no PNG holds them
            image = image.convert("RGBA" if mode == "PA" else "RGB")
        buf = io.BytesIO()
        try:
            image.save(buf, format="PNG")
        except OSError as e:  # "cannot write mode F as PNG"
            raise ValueError(f"cannot send a PIL image in mode {mode} ({e}): "
                             "convert it to RGB or L first") from None
        if buf.tell() > MAX_IMAGE_BYTES:
            raise ValueError(f"the PIL image is {buf.tell()} bytes as PNG, {_OVER}")
        return common_pb2.Image(encoded=buf.getvalue())
    raise TypeError(f"cannot send {type(image).__name__} as an image")


def _read_file(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, read only if it is a regular file of at most
    MAX_IMAGE_BYTES."""
    # O_NONBLOCK: the open of a FIFO would otherwise wait for a writer.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)  # of what was opened, not of what the name points to now
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"image {os.fspath(path)!r} is not a regular file (a FIFO, a "
                             "device or a socket): read it and pass the bytes")
        if st.st_size > MAX_IMAGE_BYTES:
            raise ValueError(f"image {os.fspath(path)!r} is {st.st_size} bytes, {_OVER}")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(MAX_IMAGE_BYTES + 1)  # the file may have grown since
    finally:
        os.close(fd)
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image {os.fspath(path)!r} is {_OVER}")
    return data
