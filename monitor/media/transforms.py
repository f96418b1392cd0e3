"""Make the clips that uploaders make: mirrored, cropped, captioned, reframed, pasted small.

Infringing uploads are rarely the original file, so both the demo platform and the tests need
such variants of real clips, built on the fly from package media instead of committed as
derived files. These builders decode their source in full and trust it: they are for media
this project ships, never for uploads (``monitor.media.decode`` is the bounded path for those).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "RGB",
    "as_rgb",
    "corrupt_copy",
    "frame_rate",
    "pattern_frames",
    "read_frames",
    "resize",
    "still_clip",
    "still_frames",
    "transform_clip",
    "transform_frames",
    "write_clip",
]

RGB = npt.NDArray[np.uint8]

_CODEC_BY_SUFFIX = {".webm": "libvpx-vp9", ".mkv": "libx264", ".mp4": "libx264", ".mov": "libx264"}


def pattern_frames(count: int, width: int = 160, height: int = 96) -> Iterator[RGB]:
    """``count`` synthetic frames, each different: a bar moving down over a shifting hue,
    and the frame number written in binary as white squares along the top."""
    for i in range(count):
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 0] = (i * 7) % 256
        image[..., 2] = 255 - (i * 7) % 256
        bar = (i * 4) % max(1, height - 8)
        image[bar : bar + 8, :, 1] = 255
        cell = max(2, width // 16)
        for bit in range(min(16, width // cell)):
            if i >> bit & 1:
                image[:cell, bit * cell : (bit + 1) * cell] = 255
        yield image


def read_frames(src: Path, *, max_seconds: float | None = None) -> Iterator[RGB]:
    """Every frame of the first video stream of ``src``, as RGB arrays."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if max_seconds is not None and frame.time is not None and frame.time >= max_seconds:
                break
            yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def frame_rate(src: Path) -> Fraction:
    """The average frame rate of the first video stream of ``src`` (25 if unknown)."""
    with av.open(str(src)) as container:
        rate = container.streams.video[0].average_rate
    return Fraction(rate) if rate else Fraction(25)


def write_clip(
    frames: Iterable[RGB],
    dst: Path,
    fps: float | Fraction = 25,
    *,
    codec: str | None = None,
    crf: int = 23,
    bitrate: int | None = None,
    preset: str = "ultrafast",
    seekable: bool = True,
    faststart: bool = False,
    rotation: int = 0,
    gop: int | None = None,
) -> Path:
    """Encode RGB frames into ``dst`` (the container follows the suffix: .mp4, .mkv, .webm).

    Frames are cropped to even sizes, as yuv420p needs. ``bitrate`` (bits/s) replaces
    ``crf`` when given. ``seekable=False`` writes through a stream the muxer cannot seek back
    into, so, like a live recording, the file declares no duration. ``faststart`` puts an
    MP4's index before its media data, as web uploads do. ``rotation`` (degrees
    counterclockwise) is stored as the display rotation, as phones store portrait video.
    ``gop`` is the largest distance between keyframes, in frames.
    """
    dst = Path(dst)
    codec = codec or _CODEC_BY_SUFFIX.get(dst.suffix, "libx264")
    rate = Fraction(fps).limit_denominator(1001)
    sink: Path | _ForwardOnly = dst if seekable else _ForwardOnly(dst.open("wb"))
    fmt = {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".mov": "mov"}.get(dst.suffix)
    container = av.open(
        sink if isinstance(sink, _ForwardOnly) else str(sink),
        "w",
        format=fmt,
        container_options={"movflags": "faststart"} if faststart else None,
    )
    try:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, VideoStream)
        stream.pix_fmt = "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        options: dict[str, str] = {}
        if codec.startswith("libx264"):
            options["preset"] = preset
            if gop:  # keyframes exactly every gop frames, none at scene cuts
                options["x264-params"] = "scenecut=0"
        if codec.startswith("libvpx"):
            options.update({"deadline": "realtime", "cpu-used": "8"})
        if bitrate:
            stream.bit_rate = bitrate
        else:
            options["crf"] = str(crf)
            if codec.startswith("libvpx"):
                stream.bit_rate = 0
        stream.options = dict(options)
        opened = False
        for image in frames:
            h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
            if not opened:
                stream.width, stream.height = w, h
                if rotation:
                    stream.set_display_rotation(rotation)
                opened = True
            picture = np.ascontiguousarray(image[:h, :w, :3])
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        if not opened:
            raise ValueError("write_clip needs at least one frame")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
        if isinstance(sink, _ForwardOnly):
            sink.close()
    return dst


class _ForwardOnly(io.RawIOBase):
    """A file that refuses to seek, as a pipe or a socket would."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self._raw = raw

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._raw.write(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def transform_frames(
    frames: Iterable[RGB],
    *,
    mirror: bool = False,
    crop: float = 0.0,
    scale: float = 1.0,
    brightness: float = 0.0,
    host: Iterable[RGB] | None = None,
    pip_scale: float = 0.4,
    reframe_9x16: bool = False,
    letterbox_9x16: bool = False,
    fill_9x16: float = 0.0,
    caption: str | None = None,
    caption_opacity: float = 1.0,
    hue: float = 0.0,
    speed: float = 1.0,
) -> Iterator[RGB]:
    """``frames`` altered the way uploaders alter a clip, in this order.

    ``speed`` first re-times the clip at the same frame rate (0.8: slowed down, every fourth
    frame shown twice; 1.25: every fifth frame dropped), as uploaders do to dodge matching.

    ``crop`` (the fraction of width and of height removed, centred), ``mirror`` (left-right),
    ``scale``, ``brightness`` (added, as a fraction of full scale, -1..1), ``host`` (the
    picture pasted, ``pip_scale`` of the host's width, into the bottom-right corner of the
    host's frames; the output stops when either runs out), ``reframe_9x16`` (a 9:16 portrait
    canvas as wide as the picture, the bars filled with a blurred copy), ``letterbox_9x16``
    (the same canvas with black bars), ``fill_9x16`` (crop-to-fill: the picture scaled until
    its height is this fraction of a 9:16 canvas's, cut to the canvas's width, over a blurred
    copy of itself; 1.0 shows only the middle 9:16 band), ``hue`` (degrees around the colour
    wheel), ``caption`` (a white bar of text across the bottom, ``caption_opacity`` opaque).
    """
    if not 0.0 <= crop < 1.0:
        raise ValueError("crop is a fraction in [0, 1)")
    if speed <= 0:
        raise ValueError("speed must be positive")
    if not 0.0 <= fill_9x16 <= 1.0 or not 0.0 < caption_opacity <= 1.0:
        raise ValueError("fill_9x16 is in [0, 1] and caption_opacity in (0, 1]")
    hosts = iter(host) if host is not None else None
    for image in _retimed(frames, speed) if speed != 1.0 else frames:
        picture = _crop(image, crop)
        if mirror:
            picture = picture[:, ::-1]
        if scale != 1.0:
            picture = resize(picture, scale=scale)
        if brightness:
            picture = np.clip(picture.astype(np.int16) + round(brightness * 255), 0, 255).astype(
                np.uint8
            )
        if hue:
            picture = _hue_shifted(picture, hue)
        if hosts is not None:
            backdrop = next(hosts, None)
            if backdrop is None:
                return
            picture = _picture_in_picture(picture, backdrop, pip_scale)
        if reframe_9x16:
            picture = _reframe_9x16(picture)
        if letterbox_9x16:
            picture = _reframe_9x16(picture, blurred=False)
        if fill_9x16:
            picture = _fill_9x16(picture, fill_9x16)
        if caption:
            picture = _caption_bar(picture, caption, caption_opacity)
        yield picture


def transform_clip(
    src: Path,
    dst: Path,
    *,
    mirror: bool = False,
    crop: float = 0.0,
    scale: float = 1.0,
    brightness: float = 0.0,
    pip_into: Path | None = None,
    pip_scale: float = 0.4,
    reframe_9x16: bool = False,
    letterbox_9x16: bool = False,
    fill_9x16: float = 0.0,
    caption: str | None = None,
    caption_opacity: float = 1.0,
    hue: float = 0.0,
    speed: float = 1.0,
    max_seconds: float | None = None,
    crf: int = 23,
    bitrate: int | None = None,
    codec: str | None = None,
) -> Path:
    """Write a variant of ``src`` into ``dst`` (see ``transform_frames``), re-encoded with
    ``crf`` or ``bitrate``; ``pip_into`` is the host clip, looped if shorter."""
    if not 0.0 <= crop < 1.0:
        raise ValueError("crop is a fraction in [0, 1)")
    host = _looping(pip_into, max_seconds) if pip_into is not None else None
    frames = transform_frames(
        read_frames(src, max_seconds=max_seconds),
        mirror=mirror,
        crop=crop,
        scale=scale,
        brightness=brightness,
        host=host,
        pip_scale=pip_scale,
        reframe_9x16=reframe_9x16,
        letterbox_9x16=letterbox_9x16,
        fill_9x16=fill_9x16,
        caption=caption,
        caption_opacity=caption_opacity,
        hue=hue,
        speed=speed,
    )
    return write_clip(frames, dst, frame_rate(src), crf=crf, bitrate=bitrate, codec=codec)


def still_frames(
    image: Path | RGB, *, count: int, zoom: float = 1.15, max_side: int | None = None
) -> Iterator[RGB]:
    """``count`` frames of a still picture slowly zooming in towards its centre by ``zoom``,
    so that no two frames are the same (how photo slideshows and many AI clips look)."""
    picture = as_rgb(image)
    if max_side and max(picture.shape[:2]) > max_side:
        picture = resize(picture, scale=max_side / max(picture.shape[:2]))
    height, width = picture.shape[:2]
    base = Image.fromarray(np.ascontiguousarray(picture))
    for i in range(max(1, count)):
        factor = zoom ** (i / max(1, count - 1))
        w, h = width / factor, height / factor
        box = ((width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2)
        yield np.asarray(base.resize((width, height), Image.Resampling.BILINEAR, box=box))


def still_clip(
    image: Path | RGB,
    dst: Path,
    *,
    seconds: float = 2.0,
    fps: float = 25,
    zoom: float = 1.15,
    max_side: int | None = None,
) -> Path:
    """A short clip of ``still_frames``: ``seconds`` long at ``fps``."""
    count = max(1, round(seconds * fps))
    return write_clip(still_frames(image, count=count, zoom=zoom, max_side=max_side), dst, fps)


def corrupt_copy(
    src: Path, dst: Path, *, start: float = 0.4, length: float = 0.2, seed: int = 0
) -> Path:
    """A copy of ``src`` whose bytes from ``start`` for ``length`` (fractions of the size)
    are overwritten with random bytes: damage in the middle of the media data."""
    data = bytearray(Path(src).read_bytes())
    begin, count = int(len(data) * start), int(len(data) * length)
    data[begin : begin + count] = np.random.default_rng(seed).bytes(count)
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


# --- picture operations ------------------------------------------------------------------


def as_rgb(image: Path | RGB) -> RGB:
    """A picture file read as RGB, or an array passed through."""
    if isinstance(image, np.ndarray):
        return image
    with Image.open(image) as opened:
        return np.asarray(opened.convert("RGB"))


def _crop(image: RGB, fraction: float) -> RGB:
    if not fraction:
        return image
    h, w = image.shape[:2]
    dy, dx = round(h * fraction / 2), round(w * fraction / 2)
    return image[dy : h - dy, dx : w - dx]


def resize(image: RGB, *, scale: float | None = None, size: tuple[int, int] | None = None) -> RGB:
    """``image`` scaled by ``scale``, or to ``size`` (width, height), bilinearly."""
    if size is None:
        assert scale is not None
        size = (max(2, round(image.shape[1] * scale)), max(2, round(image.shape[0] * scale)))
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.BILINEAR)
    )


def _retimed(frames: Iterable[RGB], speed: float) -> Iterator[RGB]:
    """Output frame ``k`` shows source frame ``floor(k * speed)``."""
    wanted = 0
    for position, image in enumerate(frames):
        while int(wanted * speed) == position:
            yield image
            wanted += 1


def _looping(src: Path, max_seconds: float | None) -> Iterator[RGB]:
    frames = list(read_frames(src, max_seconds=max_seconds))
    while True:
        yield from frames


def _picture_in_picture(inset: RGB, host: RGB, scale: float) -> RGB:
    out = host.copy()
    hh, hw = host.shape[:2]
    w = max(2, round(hw * scale))
    h = max(2, round(inset.shape[0] * w / inset.shape[1]))
    if h > hh:  # a tall inset in a wide host: fit the height instead
        h, w = hh * 9 // 10, max(2, round(inset.shape[1] * (hh * 9 // 10) / inset.shape[0]))
    small = resize(inset, size=(w, h))
    margin = max(1, hw // 40)
    y, x = hh - h - margin, hw - w - margin
    out[max(0, y) : max(0, y) + h, max(0, x) : max(0, x) + w] = small[
        : hh - max(0, y), : hw - max(0, x)
    ]
    return out


def _blurred(image: RGB, width: int, height: int) -> RGB:
    """``image`` stretched over ``width`` x ``height`` and blurred, as phone apps fill bars:
    blurring a small copy and enlarging it is as good as a wide Gaussian blur and far faster."""
    tiny = Image.fromarray(np.ascontiguousarray(image)).resize((9, 16), Image.Resampling.BOX)
    return np.asarray(tiny.resize((width, height), Image.Resampling.BICUBIC)).copy()


def _reframe_9x16(image: RGB, *, blurred: bool = True) -> RGB:
    h, w = image.shape[:2]
    canvas_h = round(w * 16 / 9) // 2 * 2
    background = _blurred(image, w, canvas_h) if blurred else np.zeros((canvas_h, w, 3), np.uint8)
    top = (canvas_h - h) // 2
    if top >= 0:
        background[top : top + h] = image
        return background
    return image[-top : -top + canvas_h]  # already taller than 9:16: crop to it


def _fill_9x16(image: RGB, fill: float) -> RGB:
    """A 9:16 canvas as tall as ``image``: the picture scaled to ``fill`` of its height, its
    middle kept, over a blurred copy of itself."""
    h, w = image.shape[:2]
    canvas_w = round(h * 9 / 16) // 2 * 2
    canvas = _blurred(image, canvas_w, h)
    scaled_h = max(2, round(h * fill))
    scaled_w = max(2, round(w * scaled_h / h))
    picture = resize(image, size=(scaled_w, scaled_h))
    left = (scaled_w - canvas_w) // 2
    top = (h - scaled_h) // 2
    if left >= 0:
        canvas[top : top + scaled_h] = picture[:, left : left + canvas_w]
    else:
        canvas[top : top + scaled_h, -left : -left + scaled_w] = picture
    return canvas


def _hue_shifted(image: RGB, degrees: float) -> RGB:
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(degrees * 256 / 360)) % 256).astype(
        np.uint8
    )
    return np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL), np.uint8)


def _caption_bar(image: RGB, text: str, opacity: float = 1.0) -> RGB:
    h, w = image.shape[:2]
    bar = max(12, h // 8)
    picture = Image.fromarray(np.ascontiguousarray(image))
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((0, h - bar, w, h), fill=(255, 255, 255, round(255 * opacity)))
    font = ImageFont.load_default(size=max(8, bar * 6 // 10))
    draw.text((w // 2, h - bar // 2), text, fill=(0, 0, 0, 255), font=font, anchor="mm")
    return np.asarray(Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB"))
