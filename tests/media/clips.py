"""Build test media with PyAV and Pillow: transformed clips and broken files.

Infringing uploads are rarely the original file: they are re-encoded, cropped, mirrored,
captioned, reframed for phones or pasted small into another video. The builders of such
variants live in ``monitor.media.transforms`` (the demo platform makes its clips with them)
and are re-exported here; the broken and odd files below only tests need. All are made on
the fly (into ``tmp_path``), so no derived media is committed.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from monitor.media.transforms import (
    RGB,
    as_rgb,
    corrupt_copy,
    frame_rate,
    pattern_frames,
    read_frames,
    still_clip,
    transform_clip,
    write_clip,
)

__all__ = [
    "audio_only",
    "corrupt_copy",
    "empty_file",
    "frame_rate",
    "image_in_container",
    "pattern_frames",
    "read_frames",
    "still_clip",
    "text_file",
    "transform_clip",
    "truncated_copy",
    "write_clip",
]


def image_in_container(image: Path | RGB, dst: Path, *, codec: str = "png") -> Path:
    """A one-frame "video" holding a still picture (``codec`` png, mjpeg or libx264)."""
    picture = as_rgb(image)
    fmt = {".mkv": "matroska", ".mov": "mov", ".mp4": "mp4", ".avi": "avi"}.get(Path(dst).suffix)
    with av.open(str(dst), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=1)
        assert isinstance(stream, VideoStream)
        stream.pix_fmt = {"png": "rgb24", "mjpeg": "yuvj420p"}.get(codec, "yuv420p")
        h, w = picture.shape[0] // 2 * 2, picture.shape[1] // 2 * 2
        stream.width, stream.height = w, h
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture[:h, :w]), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return Path(dst)


def audio_only(dst: Path, *, seconds: float = 1.0, rate: int = 44100) -> Path:
    """A tone without any picture: .wav (PCM), .m4a (AAC) or .mp3, by the suffix."""
    dst = Path(dst)
    codec, fmt, layout = {
        ".wav": ("pcm_s16le", "wav", "s16"),
        ".m4a": ("aac", "mp4", "fltp"),
        ".mp3": ("libmp3lame", "mp3", "s16p"),
    }[dst.suffix]
    with av.open(str(dst), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, AudioStream)
        chunk = 1024
        total = round(seconds * rate)
        for start in range(0, total, chunk):
            t = (np.arange(start, min(total, start + chunk)) / rate).astype(np.float32)
            tone = 0.3 * np.sin(2 * math.pi * 440 * t)
            samples = (tone * 32767).astype(np.int16) if layout.startswith("s16") else tone
            frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format=layout, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return dst


def truncated_copy(src: Path, dst: Path, *, keep: float = 0.3) -> Path:
    """The first ``keep`` fraction of the bytes of ``src``: a download cut short."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: max(1, int(len(data) * keep))])
    return Path(dst)


def empty_file(dst: Path) -> Path:
    """A zero-length file."""
    Path(dst).write_bytes(b"")
    return Path(dst)


def text_file(dst: Path, text: str = "This is not a video.\n" * 50) -> Path:
    """A plain-text file, whatever its name says."""
    Path(dst).write_text(text, encoding="utf-8")
    return Path(dst)
