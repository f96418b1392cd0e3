"""Turn a clip into a few frames that cover it: its keyframes plus evenly spaced frames.

Decoding, not inference, is the slow step of scoring (see MODELS.md), so a clip is never
decoded in full. Keyframes come almost free (only their packets are decoded) and mark where
encoders saw the picture change; evenly spaced frames cover long shots that have no keyframe
inside them. Each even frame is reached by seeking to the keyframe before it and decoding
forward, and not seeking at all when the previous target lies in the same group of pictures.

The files come from strangers, so FFmpeg opens only local files (no network protocol, so a
playlist cannot make it fetch an address) in a short list of ordinary containers; everything
else, and every FFmpeg error, surfaces as one of the ``MediaError`` types.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from monitor.errors import (
    EmptyMediaError,
    MediaTooLargeError,
    NoVideoStreamError,
    UnreadableMediaError,
)
from monitor.media.frames import Frame, RGBImage
from monitor.media.limits import DEFAULT_LIMITS, Deadline, DecodeLimits, check_file, fit_within

__all__ = ["decode_clip", "decode_every_frame"]

# Demuxer names as FFmpeg matches them against "format_whitelist" (any one name of a
# demuxer such as "mov,mp4,m4a,3gp,3g2,mj2" is enough). Raw elementary streams (h263,
# h264, ...) are left out on purpose: FFmpeg takes random bytes for h263 video. Audio
# containers are in so that an audio-only upload is reported as such, not as unreadable.
_ACCEPTED_FORMATS = (
    "mov",
    "matroska",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "ogg",
    "asf",
    "gif",
    "ivf",
    "wav",
    "mp3",
    "aac",
    "flac",
)
_OPEN_OPTIONS = {"format_whitelist": ",".join(_ACCEPTED_FORMATS), "protocol_whitelist": "file"}
_FALLBACK_FPS = 25.0


def decode_clip(
    path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS, *, even_frames: int = 8
) -> list[Frame]:
    """Decode the keyframes of a clip and ``even_frames`` evenly spaced frames.

    Frames closer together than one frame period count once (a keyframe wins), and when more
    than ``limits.max_frames`` remain, those kept are spread as evenly over the timeline as
    the candidates allow. Frames come back sorted by time, ``index`` numbering them in that
    order; ``time`` is in seconds from the start of the video stream.

    Raises ``EmptyMediaError`` (an empty file, or a stream without a single frame),
    ``UnreadableMediaError`` (not media, a corrupt or truncated container, a stream that
    cannot be decoded), ``NoVideoStreamError`` (audio only), ``MediaTooLargeError`` (over
    ``max_bytes``, or frames over ``BOMB_FACTOR * max_pixels``) or ``DecodeTimeoutError``.
    An MP4 cut short before its index (the ``moov`` box, at the end of most camera files)
    is unreadable; one cut after it yields the frames of the part that is there, as does a
    file whose middle is damaged.
    """
    if even_frames < 0:
        raise ValueError("even_frames must not be negative")
    with _sampler(Path(path), limits) as sampler:
        return sampler.sample(even_frames)


def decode_every_frame(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> Iterator[Frame]:
    """Every frame of a clip in decode order, one at a time, for reference footage.

    Reference footage is hashed frame by frame (a moving camera changes the picture more in
    one frame period than a perceptual hash tolerates), and a film's frames cannot all be in
    memory at once, so they stream. ``limits.max_frames`` and ``max_duration_s`` end the
    stream early (not an error); the errors are those of ``decode_clip``, raised when met.
    """
    with _sampler(Path(path), limits) as sampler:
        yield from sampler.every_frame()


@contextlib.contextmanager
def _sampler(path: Path, limits: DecodeLimits) -> Iterator[_Sampler]:
    """The clip's video stream, opened under ``limits``; FFmpeg's errors as ``MediaError``."""
    check_file(path, limits)
    deadline = Deadline(limits.timeout_s, path)
    container = _open(path)
    try:
        yield _Sampler(container, _video_stream(container, path), path, limits, deadline)
    except av.error.FFmpegError as exc:
        raise UnreadableMediaError(
            f"the video cannot be decoded ({_reason(exc)})", source=path
        ) from exc
    finally:
        container.close()


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path), "r", options=_OPEN_OPTIONS, metadata_errors="replace")
    except av.error.ArgumentError as exc:
        # What FFmpeg answers when the detected format is not on the accepted list.
        raise UnreadableMediaError(
            "not a media file, or in a container format that is not accepted "
            "(a still image is read by load_image or load_media)",
            source=path,
        ) from exc
    except av.error.InvalidDataError as exc:
        if _looks_like_mp4(path):
            message = (
                "an MP4/MOV file without a readable index (its 'moov' box): truncated or corrupt"
            )
        else:
            message = "not a media file, or a corrupt one"
        raise UnreadableMediaError(message, source=path) from exc
    except av.error.FFmpegError as exc:
        raise UnreadableMediaError(
            f"cannot be opened as media ({_reason(exc)})", source=path
        ) from exc


def _looks_like_mp4(path: Path) -> bool:
    # ISO media files open with a box whose type is "ftyp" (some with "moov" or "mdat" first).
    with path.open("rb") as file:
        return file.read(12)[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    # Cover art in a music file shows up as a one-picture "video" stream; it is not a clip.
    attached = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & attached]
    if videos:
        return videos[0]
    others = sorted({s.type for s in container.streams} - {"video"})
    kinds = f"it has only {', '.join(others)}" if others else "it has no stream at all"
    raise NoVideoStreamError(f"no video stream ({kinds})", source=path)


def _reason(exc: av.error.FFmpegError) -> str:
    return exc.strerror or type(exc).__name__


@dataclass(slots=True)
class _Candidate:
    frame: VideoFrame
    time: float
    keyframe: bool


class _Sampler:
    """The two passes over one open video stream."""

    def __init__(
        self,
        container: InputContainer,
        stream: VideoStream,
        path: Path,
        limits: DecodeLimits,
        deadline: Deadline,
    ) -> None:
        self._container = container
        self._stream = stream
        self._path = path
        self._limits = limits
        self._deadline = deadline
        if stream.time_base is None:
            raise UnreadableMediaError("the video stream has no time base", source=path)
        self._time_base: Fraction = stream.time_base
        self._start_pts = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        self._period = 1.0 / float(rate) if rate else 1.0 / _FALLBACK_FPS
        self._keyframe_times: list[float] = []
        self._end = 0.0
        self._failed_packets = 0
        self._first_failure = ""
        self._position: float | None = None
        self._forward: Iterator[VideoFrame] | None = None
        self._check_declared_size(stream.codec_context.width, stream.codec_context.height)
        stream.thread_type = "AUTO"

    def sample(self, even_frames: int) -> list[Frame]:
        candidates = self._keyframes()
        if even_frames:
            candidates += self._even_frames(even_frames, candidates)
        if not candidates:
            raise self._nothing_decoded()
        chosen = _spread(_dedupe(candidates, self._period / 2), self._limits.max_frames)
        return [
            Frame(image=self._to_rgb(c.frame), time=c.time, index=i, keyframe=c.keyframe)
            for i, c in enumerate(chosen)
        ]

    def every_frame(self) -> Iterator[Frame]:
        count = 0
        for packet in itertools.chain(self._packets(), [None]):  # None drains the decoder
            for frame in self._decode(packet):
                at = self._frame_time(frame)
                if count >= self._limits.max_frames or at > self._limits.max_duration_s:
                    return
                self._position = at
                image = self._to_rgb(frame)
                yield Frame(image=image, time=at, index=count, keyframe=frame.key_frame)
                count += 1
        if not count:
            raise self._nothing_decoded()

    def _nothing_decoded(self) -> UnreadableMediaError | EmptyMediaError:
        """Why the stream gave no frame: reads that failed, or nothing in it."""
        if self._failed_packets:
            return UnreadableMediaError(
                f"the video stream cannot be decoded ({self._failed_packets} reads "
                f"failed, the first with: {self._first_failure})",
                source=self._path,
            )
        return EmptyMediaError("the video stream yields no frame", source=self._path)

    # --- pass 1: keyframes ----------------------------------------------------------------

    def _keyframes(self) -> list[_Candidate]:
        """Decode the keyframes over the window; learn where the stream ends.

        Only the first keyframe of each of at most ``2 * max_frames`` time slots is decoded
        and kept, so a clip with hundreds of cuts, or an intra-only one where every frame is
        a keyframe, costs no more time or memory than one with a few.
        """
        window = self._limits.max_duration_s
        slots = _Slots(2 * self._limits.max_frames, min(self._declared_duration() or 1.0, window))

        def keep(frames: list[VideoFrame]) -> None:
            for frame in frames:
                t = self._frame_time(frame)
                if t <= window and frame.key_frame:
                    slots.offer(_Candidate(frame, t, keyframe=True))

        for packet in self._packets():
            t = self._packet_time(packet.pts if packet.pts is not None else packet.dts)
            if t is not None:
                if t > window:
                    break
                duration = float(packet.duration * self._time_base) if packet.duration else 0.0
                self._end = max(self._end, t + duration)
            # A keyframe decodes on its own, so only keyframe packets reach the decoder.
            # This does what skip_frame="NONKEY" does, for every decoder: libvpx ignores
            # that setting, and libdav1d keeps it after it is reset for the second pass.
            if packet.is_keyframe and packet.size:
                if t is not None:
                    self._keyframe_times.append(t)
                if t is None or slots.claim(t):
                    keep(self._decode(packet))
        keep(self._decode(None))  # drain frames held back by frame threading
        self._end = min(self._end, window)
        self._keyframe_times.sort()
        return sorted(slots.kept.values(), key=lambda c: c.time)

    # --- pass 2: evenly spaced frames -----------------------------------------------------

    def _even_frames(self, count: int, near: list[_Candidate]) -> list[_Candidate]:
        end = self._end or self._limits.max_duration_s
        found: list[_Candidate] = []
        for i in range(count):
            target = end * (i + 0.5) / count
            if any(abs(c.time - target) < self._period for c in near):
                continue  # a keyframe already shows this moment
            try:
                frame = self._frame_at(target)
            except av.error.FFmpegError:
                break  # not seekable, or broken past here: keep what there is
            if frame is None:
                break
            found.append(_Candidate(frame, self._frame_time(frame), keyframe=frame.key_frame))
        return found

    def _frame_at(self, target: float) -> VideoFrame | None:
        # Seek only when a keyframe lies between here and the target: decoding on from
        # here is cheaper than decoding from the keyframe before the target. A target
        # already passed (the stream jumped over it) takes the next frame.
        keyframe_before = max((k for k in self._keyframe_times if k <= target), default=0.0)
        if self._forward is None or self._position is None or keyframe_before > self._position:
            pts = self._start_pts + math.floor(target / self._time_base)
            self._container.seek(pts, stream=self._stream, backward=True)
            self._stream.codec_context.flush_buffers()
            self._forward = self._decode_forward()
            self._position = None
        last: VideoFrame | None = None
        for frame in self._forward:
            self._position = self._frame_time(frame)
            last = frame
            if self._position >= target - self._period / 2:
                return frame
        self._forward = None
        return last

    def _decode_forward(self) -> Iterator[VideoFrame]:
        for packet in self._packets():
            yield from self._decode(packet)

    def _packets(self) -> Iterator[av.Packet[VideoStream]]:
        """The stream's packets until its end, the deadline, or damage the demuxer cannot
        read past (what came before it is still used)."""
        packets = self._container.demux(self._stream)
        while True:
            self._deadline.check()
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.InvalidDataError, av.error.EOFError) as exc:
                self._failed(exc)
                return
            yield packet

    # --- helpers --------------------------------------------------------------------------

    def _decode(self, packet: av.Packet[VideoStream] | None) -> list[VideoFrame]:
        """Decode one packet; a damaged packet is counted and skipped, not fatal."""
        try:
            frames = self._stream.codec_context.decode(packet)
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            self._failed(exc)
            return []
        out = [f for f in frames if isinstance(f, VideoFrame)]
        for frame in out:
            self._deadline.check()
            self._check_declared_size(frame.width, frame.height)
        return out

    def _failed(self, exc: av.error.FFmpegError) -> None:
        self._failed_packets += 1
        self._first_failure = self._first_failure or _reason(exc)

    def _check_declared_size(self, width: int, height: int) -> None:
        if width * height > self._limits.max_declared_pixels:
            raise MediaTooLargeError(
                f"frames of {width}x{height} pixels are over the limit of "
                f"{self._limits.max_declared_pixels:,} pixels",
                source=self._path,
            )

    def _declared_duration(self) -> float | None:
        if self._stream.duration:
            return float(self._stream.duration * self._time_base)
        if self._container.duration:
            return self._container.duration / av.time_base
        return None

    def _packet_time(self, pts: int | None) -> float | None:
        if pts is None:
            return None
        return max(0.0, float((pts - self._start_pts) * self._time_base))

    def _frame_time(self, frame: VideoFrame) -> float:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:  # no timestamp at all: place it one period after the last one
            return (self._position or 0.0) + self._period
        return max(0.0, float((pts - self._start_pts) * self._time_base))

    def _to_rgb(self, frame: VideoFrame) -> RGBImage:
        width = frame.width
        sar = self._stream.sample_aspect_ratio
        if sar and sar != 1:  # anamorphic video: show it at its display width
            width = max(1, round(width * sar))
        size = fit_within(width, frame.height, self._limits.max_pixels)
        if size == (frame.width, frame.height):
            image = frame.to_ndarray(format="rgb24")
        else:
            image = frame.to_ndarray(
                format="rgb24", width=size[0], height=size[1], interpolation="AREA"
            )
        turns = round(frame.rotation / 90) % 4  # counterclockwise, as the display matrix says
        if turns:
            image = np.rot90(image, turns)
        return np.ascontiguousarray(image, dtype=np.uint8)


class _Slots:
    """Equal time slots, each holding the first keyframe offered in it. When more than
    ``most`` slots are claimed, slots double in width (pairs merge, the earlier frame
    stays), so the count stays bounded when the length of the clip is not known."""

    def __init__(self, most: int, span: float) -> None:
        self._most = most
        self._width = max(span, 1e-3) / most
        self._claimed: set[int] = set()
        self.kept: dict[int, _Candidate] = {}

    def claim(self, t: float) -> bool:
        """Whether a keyframe at ``t`` opens a new slot (and so is worth decoding)."""
        slot = int(t // self._width)
        if slot in self._claimed:
            return False
        self._claimed.add(slot)
        while len(self._claimed) > self._most:
            self._width *= 2
            self._claimed = {s // 2 for s in self._claimed}
            kept, self.kept = sorted(self.kept.values(), key=lambda c: c.time), {}
            for candidate in kept:
                self.offer(candidate)
        return True

    def offer(self, candidate: _Candidate) -> None:
        self.kept.setdefault(int(candidate.time // self._width), candidate)


def _dedupe(candidates: list[_Candidate], tolerance: float) -> list[_Candidate]:
    """Sort by time and drop a frame closer than ``tolerance`` to the one before it,
    keeping the keyframe of such a pair."""
    out: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: (c.time, not c.keyframe)):
        if out and c.time - out[-1].time < tolerance:
            if c.keyframe and not out[-1].keyframe:
                out[-1] = c
            continue
        out.append(c)
    return out


def _spread(candidates: list[_Candidate], limit: int) -> list[_Candidate]:
    """Keep ``limit`` candidates spread over the timeline: for each of ``limit`` evenly
    spaced moments from the first candidate to the last, the nearest one not yet taken
    (a keyframe when two are as near)."""
    if len(candidates) <= limit:
        return candidates
    first, last = candidates[0].time, candidates[-1].time
    free = set(range(len(candidates)))
    picked: list[int] = []
    for j in range(limit):
        moment = first + (last - first) * j / (limit - 1) if limit > 1 else first
        best = min(
            free, key=lambda i: (abs(candidates[i].time - moment), not candidates[i].keyframe)
        )
        free.discard(best)
        picked.append(best)
    return [candidates[i] for i in sorted(picked)]
