"""load_image and load_media: pictures as uploads come, told apart from clips by content."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.errors import (
    EmptyMediaError,
    MediaTooLargeError,
    NoVideoStreamError,
    UnreadableMediaError,
)
from monitor.media import DecodeLimits, load_every_frame, load_image, load_media
from tests.media.clips import audio_only, pattern_frames, text_file, write_clip

PackageFile = Callable[[str], Path]


def marked(width: int = 60, height: int = 40) -> np.ndarray:
    """A grey picture with a red mark in its top-left corner."""
    picture = np.full((height, width, 3), 128, np.uint8)
    picture[:8, :8] = (255, 0, 0)
    return picture


def is_red(pixel: np.ndarray) -> bool:
    return bool(pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60)


# --- load_image ---------------------------------------------------------------------------


def test_a_photo_loads_as_one_rgb_frame(package_file: PackageFile) -> None:
    frame = load_image(package_file("t1.jpg"))

    assert frame.image.shape == (886, 1280, 3) and frame.image.dtype == np.uint8
    assert frame.image.flags.c_contiguous
    assert (frame.time, frame.index, frame.keyframe) == (0.0, 0, False)


def test_a_small_face_png_keeps_its_size(package_file: PackageFile) -> None:
    assert load_image(package_file("Tom_Hanks_54745.png")).image.shape == (112, 112, 3)


def test_a_large_image_is_downscaled_to_max_pixels_keeping_its_aspect_ratio(
    package_file: PackageFile,
) -> None:
    limits = DecodeLimits(max_pixels=200_000)

    frame = load_image(package_file("t1.jpg"), limits)

    assert frame.width * frame.height <= 200_000
    assert frame.width / frame.height == pytest.approx(1280 / 886, rel=0.01)
    assert frame.width >= 530


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: display rotated 90 degrees clockwise
    Image.fromarray(marked()).save(path, exif=exif, quality=95)

    image = load_image(path).image

    assert image.shape == (60, 40, 3)
    assert is_red(image[2, -3])  # the top-left mark is now top-right


def test_transparent_pixels_are_shown_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:10] = (0, 0, 255, 255)  # opaque blue top half, fully transparent bottom half
    path = tmp_path / "sticker.png"
    Image.fromarray(rgba, "RGBA").save(path)

    image = load_image(path).image

    assert tuple(image[2, 2]) == (0, 0, 255)
    assert tuple(image[15, 15]) == (255, 255, 255)


def test_a_palette_gif_with_a_transparent_colour_is_shown_on_white(tmp_path: Path) -> None:
    picture = Image.new("P", (10, 10), 0)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    picture.paste(1, (0, 0, 5, 10))  # red left half, transparent (index 0) right half
    path = tmp_path / "clipart.gif"
    picture.save(path, transparency=0)

    image = load_image(path).image

    assert is_red(image[5, 1])
    assert tuple(image[5, 8]) == (255, 255, 255)


def test_sixteen_bit_greyscale_becomes_eight_bit_rgb(tmp_path: Path) -> None:
    grey = np.array([[0, 32896, 65535]], np.uint16)
    path = tmp_path / "scan.png"
    Image.fromarray(grey).save(path)

    image = load_image(path).image

    assert image.shape == (1, 3, 3)
    assert image[0, :, 0].tolist() == [0, 128, 255]
    assert (image[..., 0] == image[..., 2]).all()


def test_a_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.fromarray(marked()).convert("CMYK").save(path, quality=95)

    image = load_image(path).image

    assert image.shape == (40, 60, 3)
    assert is_red(image[3, 3])


def test_an_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path: Path) -> None:
    # A valid PNG header declaring 100,000 x 100,000 pixels, and no pixel data.
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))

    with pytest.raises(MediaTooLargeError, match=r"too large|over the limit") as caught:
        load_image(path)

    assert str(path) in str(caught.value)


def test_an_image_over_the_bomb_limit_of_its_limits_is_refused(package_file: PackageFile) -> None:
    # 1280 x 886 is more than 64 times 100 x 100.
    with pytest.raises(MediaTooLargeError, match="1280x886"):
        load_image(package_file("t1.jpg"), DecodeLimits(max_pixels=100 * 100))


def one_bit_png(path: Path, side: int) -> Path:
    """A black one-bit PNG of ``side`` x ``side`` pixels, written row by row: a few KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then the packed bits
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def test_a_tiny_png_of_huge_size_is_refused_before_it_costs_memory(tmp_path: Path) -> None:
    # Under the declared-size bomb limit (132 Mpx < 64 x 2 Mpx), but a PNG cannot decode at
    # a reduced size: decoding it whole cost 0.8 GB. Measured in a process of its own.
    path = one_bit_png(tmp_path / "huge.png", 11_500)
    assert path.stat().st_size < 32 * 1024
    probe = (
        "import resource, sys\n"
        "from monitor.errors import MediaTooLargeError\n"
        "from monitor.media import load_media\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    load_media(sys.argv[1])\n"
        "    outcome = 'decoded'\n"
        "except MediaTooLargeError:\n"
        "    outcome = 'refused'\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(outcome, (after - before) // 1024)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120
    )
    outcome, grown_mb = run.stdout.split()
    assert outcome == "refused", run.stderr
    assert int(grown_mb) < 64


def test_an_image_decodes_at_a_reduced_size_when_its_format_allows(
    package_file: PackageFile, tmp_path: Path
) -> None:
    limits = DecodeLimits(max_pixels=20_000)  # 1280 x 886 is 56 times that
    # A JPEG decodes at 1/4 (320 x 222), inside 16 times max_pixels: scaled, not refused.
    frame = load_image(package_file("t1.jpg"), limits)
    assert frame.width * frame.height <= 20_000
    # The same picture as a PNG would decode whole: refused.
    png = tmp_path / "t1.png"
    Image.open(package_file("t1.jpg")).save(png)
    with pytest.raises(MediaTooLargeError, match="cannot decode at a reduced size"):
        load_image(png, limits)


def test_a_large_one_bit_png_within_limits_is_scaled_down(tmp_path: Path) -> None:
    frame = load_image(one_bit_png(tmp_path / "bits.png", 1000), DecodeLimits(max_pixels=100_000))
    assert frame.image.shape == (316, 316, 3) and int(frame.image.max()) == 0


def test_a_truncated_jpeg_is_unreadable(package_file: PackageFile, tmp_path: Path) -> None:
    data = package_file("t1.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(UnreadableMediaError, match="cannot be decoded") as caught:
        load_image(path)

    assert str(path) in str(caught.value)


def test_load_image_refuses_a_clip(package_file: PackageFile) -> None:
    with pytest.raises(UnreadableMediaError, match="not an image"):
        load_image(package_file("bikes.mp4"))


def test_load_image_refuses_empty_and_oversized_files(
    package_file: PackageFile, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMediaError):
        load_image(empty)
    with pytest.raises(MediaTooLargeError, match="bytes"):
        load_image(package_file("t1.jpg"), DecodeLimits(max_bytes=1000))


# --- load_media ---------------------------------------------------------------------------


def test_a_photo_named_like_a_video_is_loaded_as_a_photo(
    package_file: PackageFile, tmp_path: Path
) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(package_file("t1.jpg").read_bytes())

    frames = load_media(path)

    assert len(frames) == 1 and frames[0].image.shape == (886, 1280, 3)


def test_a_video_named_like_a_photo_is_decoded_as_a_clip(
    package_file: PackageFile, tmp_path: Path
) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(package_file("bikes.mp4").read_bytes())

    frames = load_media(path, DecodeLimits(max_frames=5))

    assert len(frames) == 5
    assert frames[-1].time > 5.0


@pytest.mark.parametrize(
    ("make", "error"),
    [(text_file, UnreadableMediaError), (audio_only, NoVideoStreamError)],
    ids=["text", "audio"],
)
def test_load_media_raises_the_typed_error_of_what_the_file_is(
    tmp_path: Path, make: Callable[[Path], Path], error: type[Exception]
) -> None:
    # Named .png, but a text file or a WAV inside.
    real = make(tmp_path / "upload.wav")
    path = real.rename(tmp_path / "upload.png")

    with pytest.raises(error):
        load_media(path)


def test_an_animated_gif_gives_evenly_spaced_timed_frames(tmp_path: Path) -> None:
    pictures = [Image.fromarray(p) for p in pattern_frames(40, 64, 48)]
    path = tmp_path / "meme.gif"
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=50, loop=0)

    frames = load_media(path, DecodeLimits(max_frames=5))

    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    # Frames 0, 10, 20, 29 and 39 of 40, at 50 ms each.
    assert [round(f.time, 2) for f in frames] == [0.0, 0.5, 1.0, 1.45, 1.95]
    assert frames[0].keyframe and not frames[1].keyframe
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert np.abs(frames[0].image.astype(int) - frames[-1].image.astype(int)).mean() > 20


def test_a_still_gif_is_one_frame(tmp_path: Path) -> None:
    path = tmp_path / "still.gif"
    Image.fromarray(marked()).save(path)

    frames = load_media(path)

    assert len(frames) == 1 and is_red(frames[0].image[2, 2])


def test_a_clip_through_load_media_is_the_same_as_decode_clip(tmp_path: Path) -> None:
    path = write_clip(pattern_frames(50), tmp_path / "c.mp4", 25, gop=25)

    frames = load_media(path, even_frames=2)

    assert [f.keyframe for f in frames] == [True, False, True, False]


def test_a_phone_mpo_with_two_pictures_is_one_photo(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    main, second = Image.fromarray(marked()), Image.fromarray(marked()[::-1])
    main.save(path, format="MPO", save_all=True, append_images=[second])
    with Image.open(path) as opened:  # precondition: Pillow sees a multi-picture file
        assert opened.format == "MPO" and getattr(opened, "n_frames", 1) == 2

    frames = load_media(path)

    assert len(frames) == 1 and is_red(frames[0].image[2, 2])


def test_every_frame_of_any_media_is_told_apart_by_content_not_name(
    package_file: PackageFile, tmp_path: Path
) -> None:
    photo = tmp_path / "film.mp4"
    photo.write_bytes(package_file("t1.jpg").read_bytes())
    film = tmp_path / "still.jpg"
    film.write_bytes(package_file("bikes.mp4").read_bytes())
    pictures = [Image.new("RGB", (64, 48), (i * 20, 0, 0)) for i in range(12)]
    animation = tmp_path / "loop.gif"
    pictures[0].save(animation, save_all=True, append_images=pictures[1:], duration=50, loop=0)
    every = DecodeLimits(max_frames=1000)

    assert len(list(load_every_frame(photo, every))) == 1
    assert len(list(load_every_frame(film, every))) == 250
    assert len(list(load_every_frame(animation, every))) == 12
