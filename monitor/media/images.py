"""Still images, and the one entry point that takes any upload: ``load_media``.

Uploads lie about their type (a ``.mp4`` that is a JPEG, a GIF named ``.png``), so what a
file is comes from its content: whatever Pillow recognises among the usual picture formats is
an image, anything else goes to the video decoder, which names what it finds wrong.

Photos are shown the way their camera meant (EXIF orientation), transparent pictures on
white (the background a viewer sees on most sites), 16-bit and palette images as plain 8-bit
RGB, so every picture reaches the engine in one form.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from monitor.errors import MediaTooLargeError, UnreadableMediaError
from monitor.media.decode import decode_clip, decode_every_frame
from monitor.media.frames import Frame, RGBImage
from monitor.media.limits import DEFAULT_LIMITS, Deadline, DecodeLimits, check_file, fit_within

__all__ = ["IMAGE_FORMATS", "load_every_frame", "load_image", "load_media"]

# Formats Pillow may open. Its other plugins recognise odd or legacy files (TGA, MPEG
# headers, ...), some from very few bytes, which for an upload is more risk than use.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "TIFF")

# Pillow raises all of these for damaged files, depending on the format and the damage.
_BROKEN = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

# Formats whose extra frames are an animation. The extra pictures of a phone's MPO (a
# preview, a depth map) and the pages of a TIFF are not moments of one scene.
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP", "AVIF")

_WHITE = (255, 255, 255)
_GIF_DEFAULT_MS = 100


def load_image(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> Frame:
    """Read a still image (the first frame of an animated one) as one RGB frame.

    The frame fits ``limits.max_pixels`` (downscaled, keeping the aspect ratio), has time
    0.0 and ``keyframe`` False. Raises ``EmptyMediaError`` for an empty file,
    ``MediaTooLargeError`` over ``max_bytes`` or for an image declaring more than
    ``BOMB_FACTOR * max_pixels`` pixels, ``UnreadableMediaError`` for anything that is not
    an image in one of ``IMAGE_FORMATS`` or is damaged.
    """
    path = Path(path)
    check_file(path, limits)
    image = _open(path, limits)
    if image is None:
        raise UnreadableMediaError(
            f"not an image in a supported format ({', '.join(IMAGE_FORMATS)})", source=path
        )
    with image:
        return Frame(image=_picture(image, path, limits, orient=True))


def load_media(
    path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS, *, even_frames: int = 8
) -> list[Frame]:
    """Frames of any upload, image or clip, told apart by content, not by name.

    A still image gives one frame (as ``load_image``), as does a multi-picture MPO or TIFF
    (its first picture). An animated GIF, PNG, WebP or AVIF gives up to ``limits.max_frames`` of
    its frames, evenly spaced by index over its first ``max_duration_s``, each timed from the
    frame durations it declares (the first frame counts as a keyframe). Anything else is a
    clip for ``decode_clip``, with its errors.
    """
    path = Path(path)
    check_file(path, limits)
    image = _open(path, limits)
    if image is None:
        return decode_clip(path, limits, even_frames=even_frames)
    return _image_frames(image, path, limits)


def load_every_frame(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> Iterator[Frame]:
    """Every frame of any media, told apart by content, for reference footage: a picture's
    (an animation's, up to ``limits.max_frames``), or a clip's, streamed by
    ``decode_every_frame`` with its errors."""
    path = Path(path)
    check_file(path, limits)
    image = _open(path, limits)
    if image is None:
        yield from decode_every_frame(path, limits)
    else:
        yield from _image_frames(image, path, limits)


def _image_frames(image: Image.Image, path: Path, limits: DecodeLimits) -> list[Frame]:
    with image:
        if image.format in _ANIMATED_FORMATS and getattr(image, "n_frames", 1) > 1:
            return _animation(image, path, limits)
        return [Frame(image=_picture(image, path, limits, orient=True))]


@functools.cache
def _available_formats() -> tuple[str, ...]:
    # Pillow builds without AVIF (or before 11.2) lack it; asking for it would be an error.
    Image.init()
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)


def _open(path: Path, limits: DecodeLimits) -> Image.Image | None:
    """The opened (not yet decoded) image, or None when Pillow does not take it for one."""
    try:
        image = Image.open(path, formats=_available_formats())
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(f"the image is too large to decode ({exc})", source=path) from exc
    except _BROKEN as exc:
        raise UnreadableMediaError(f"the image cannot be read ({exc})", source=path) from exc
    width, height = image.size
    if width * height > limits.max_declared_pixels:
        image.close()
        raise MediaTooLargeError(
            f"the image is {width}x{height} pixels, over the limit of "
            f"{limits.max_declared_pixels:,} pixels",
            source=path,
        )
    return image


def _picture(image: Image.Image, path: Path, limits: DecodeLimits, *, orient: bool) -> RGBImage:
    """Decode the current frame of ``image`` into an RGB array within ``max_pixels``."""
    try:
        # A JPEG can decode at 1/2, 1/4 or 1/8 scale for a fraction of the cost; other
        # formats decode whole, so what they decode to is bounded before anything is.
        image.draft("RGB", fit_within(*image.size, limits.max_pixels))
        width, height = image.size
        if width * height > limits.max_decoded_pixels:
            raise MediaTooLargeError(
                f"the image would decode at {width}x{height} pixels (its format cannot decode "
                f"at a reduced size), over the limit of {limits.max_decoded_pixels:,}",
                source=path,
            )
        picture = ImageOps.exif_transpose(image) if orient else image
        if picture.mode in ("1", "L"):
            # Grey pictures are made small before they are made RGB, three times the bytes.
            picture = picture.convert("L")
            small = fit_within(*picture.size, limits.max_pixels)
            if small != picture.size:
                picture = picture.resize(small, Image.Resampling.LANCZOS, reducing_gap=3.0)
        picture = _rgb(picture)
        size = fit_within(*picture.size, limits.max_pixels)
        if size != picture.size:
            picture = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        return np.array(picture, dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(f"the image is too large to decode ({exc})", source=path) from exc
    except _BROKEN as exc:
        raise UnreadableMediaError(f"the image cannot be decoded ({exc})", source=path) from exc


def _rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode != "F" or values.max(initial=0.0) > 1.0:
            values = values / 257.0 if values.max(initial=0.0) > 255 else values
        else:  # floats in 0..1
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if mode == "RGB" else image.convert("RGB")


def _animation(image: Image.Image, path: Path, limits: DecodeLimits) -> list[Frame]:
    deadline = Deadline(limits.timeout_s, path)
    count = int(getattr(image, "n_frames", 1))
    wanted = set(np.linspace(0, count - 1, min(count, limits.max_frames)).round().astype(int))
    frames: list[Frame] = []
    elapsed = 0.0
    for i in range(count):
        deadline.check()
        if elapsed > limits.max_duration_s:
            break
        try:
            image.seek(i)
        except _BROKEN:
            break  # a damaged later frame: keep the frames before it
        if i in wanted:
            picture = _picture(image, path, limits, orient=False)
            frames.append(Frame(image=picture, time=elapsed, index=len(frames), keyframe=i == 0))
        elapsed += float(image.info.get("duration") or _GIF_DEFAULT_MS) / 1000.0
    if not frames:
        raise UnreadableMediaError("the animation has no readable frame", source=path)
    return frames
