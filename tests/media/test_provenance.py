"""AI-generated provenance: C2PA manifests signed here, with a chain made here (valid, altered
after signing, malformed, enormous, absent), the platform's label, caption hints, and which
source wins."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from monitor.media.provenance import (
    caption_verdict,
    describe,
    measure_c2pa,
    platform_verdict,
    read_c2pa,
    strongest,
    verdict_for,
)
from monitor.media.transforms import pattern_frames, write_clip
from monitor.records import ClipSeen, Synthetic
from tests.media.c2pa_signing import sign_media
from tests.media.clips import text_file


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(pattern_frames(12), tmp_path_factory.mktemp("c2pa") / "plain.mp4")


@pytest.fixture(scope="module")
def signed(plain: Path) -> Path:
    return sign_media(plain, plain.with_name("signed.mp4"))


def _altered(src: Path, dst: Path, at: bytes, width: int = 1, offset: int = 16) -> Path:
    data = bytearray(src.read_bytes())
    start = data.find(at) + offset
    for i in range(start, start + width):
        data[i] ^= 0x5A
    dst.write_bytes(bytes(data))
    return dst


def test_a_signed_generated_clip_reads_as_ai_generated_with_its_generator_and_validates(
    signed: Path,
) -> None:
    verdict = read_c2pa(signed)
    assert (verdict.source, verdict.value, verdict.validated) == ("c2pa", "ai_generated", True)
    assert verdict.generator == "TestGen 1.0"
    assert verdict.detail is not None
    assert "trainedAlgorithmicMedia" in verdict.detail
    assert "trust list" in verdict.detail  # the test CA is on none: said, not hidden


def test_composite_and_capture_source_types(plain: Path, tmp_path: Path) -> None:
    composite = sign_media(
        plain, tmp_path / "c.mp4", source_type="compositeWithTrainedAlgorithmicMedia"
    )
    assert read_c2pa(composite).value == "ai_generated"
    captured = sign_media(plain, tmp_path / "d.mp4", source_type="digitalCapture")
    assert read_c2pa(captured).value == "not_ai_generated"
    edited = sign_media(plain, tmp_path / "e.mp4", source_type="humanEdits")
    assert (read_c2pa(edited).source, read_c2pa(edited).value) == ("c2pa", "unknown")


def test_a_signed_jpeg_is_read_too(tmp_path: Path) -> None:
    from PIL import Image

    picture = tmp_path / "p.jpg"
    Image.fromarray(next(iter(pattern_frames(1)))).save(picture)
    verdict = read_c2pa(sign_media(picture, tmp_path / "s.jpg", mime="image/jpeg"))
    assert (verdict.value, verdict.validated) == ("ai_generated", True)


def test_content_altered_after_signing_does_not_validate(signed: Path, tmp_path: Path) -> None:
    verdict = read_c2pa(_altered(signed, tmp_path / "altered.mp4", b"mdat", width=8))
    assert (verdict.source, verdict.value, verdict.validated) == ("c2pa", "ai_generated", False)
    assert verdict.detail is not None and "Invalid" in verdict.detail
    assert "mismatch" in verdict.detail


def test_media_without_a_manifest_is_unknown(plain: Path, tmp_path: Path) -> None:
    assert read_c2pa(plain) == Synthetic()
    assert read_c2pa(text_file(tmp_path / "t.mp4")) == Synthetic()
    from PIL import Image

    Image.fromarray(next(iter(pattern_frames(1)))).save(tmp_path / "p.png")
    assert read_c2pa(tmp_path / "p.png") == Synthetic()
    assert read_c2pa(tmp_path / "missing.mp4").value == "unknown"


def test_a_malformed_manifest_is_a_clear_unknown(signed: Path, tmp_path: Path) -> None:
    broken = _altered(signed, tmp_path / "m.mp4", b"c2pa.signature", width=300, offset=-150)
    verdict = read_c2pa(broken)
    assert (verdict.source, verdict.value) == ("c2pa", "unknown")
    assert verdict.detail is not None and "unreadable" in verdict.detail


def test_a_malformed_container_is_unknown_and_raises_nothing(signed: Path, tmp_path: Path) -> None:
    data = bytearray(signed.read_bytes())
    data[:4] = struct.pack(">I", 3)  # a box shorter than its own header
    (tmp_path / "b.mp4").write_bytes(bytes(data))
    assert read_c2pa(tmp_path / "b.mp4").value == "unknown"
    (tmp_path / "cut.mp4").write_bytes(bytes(signed.read_bytes()[:40]))
    assert read_c2pa(tmp_path / "cut.mp4").value == "unknown"


def test_an_enormous_manifest_is_not_read(plain: Path, signed: Path, tmp_path: Path) -> None:
    # a C2PA box of 64 MiB appended to a clip: measured from its header, never read
    huge = tmp_path / "huge.mp4"
    body = bytes.fromhex("d8fec3d61b0e483c92975828877ec481") + bytes(64 << 20)
    huge.write_bytes(plain.read_bytes() + struct.pack(">I4s", 8 + len(body), b"uuid") + body)
    started = time.perf_counter()
    verdict = read_c2pa(huge)
    assert time.perf_counter() - started < 1.0
    assert (verdict.source, verdict.value) == ("c2pa", "unknown")
    assert verdict.detail is not None and "over the 1048576-byte limit" in verdict.detail
    assert "limit" in (read_c2pa(signed, max_manifest_bytes=100).detail or "")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("my gopher dance #Sora #fyp", "#sora"),
        ("Seedance test #seedance", "#seedance"),
        ("new trailer #veo3", "#veo3"),
        ("Made with AI, just for fun", '"made with ai"'),
        ("the whole thing is AI-generated lol", '"ai-generated"'),
        ("#aiart of the creature", "#aiart"),
    ],
)
def test_caption_hints(text: str, found: str) -> None:
    verdict = caption_verdict(text)
    assert (verdict.source, verdict.value) == ("caption", "ai_generated")
    assert verdict.detail is not None and found in verdict.detail


@pytest.mark.parametrize(
    "text",
    [None, "", "sorority rush week", "#veolia recycling", "said with aid", "not ai", "#sorano"],
)
def test_no_caption_hint_is_unknown(text: str | None) -> None:
    assert caption_verdict(text) == Synthetic()


def test_a_caption_in_any_script_or_length_is_fine() -> None:
    assert caption_verdict("生成 #sora " * 2000).value == "ai_generated"
    assert caption_verdict("ゴーファー" * 5000) == Synthetic()


def test_the_platform_label() -> None:
    yes = platform_verdict("youtube", True)
    assert (yes.source, yes.value) == ("platform", "ai_generated")
    assert yes.detail is not None and "containsSyntheticMedia" in yes.detail
    assert platform_verdict("youtube", False).value == "not_ai_generated"
    assert platform_verdict("reddit", None) == Synthetic()


def test_the_strongest_source_wins_and_the_others_are_named() -> None:
    valid = Synthetic(source="c2pa", value="ai_generated", validated=True, detail="c")
    invalid = valid.model_copy(update={"validated": False})
    said_no = platform_verdict("youtube", False)
    hint = caption_verdict("#sora")
    assert strongest([hint, said_no, valid]).source == "c2pa"
    assert strongest([invalid, said_no]).source == "platform"
    assert strongest([invalid, hint]).validated is False
    won = strongest([hint, said_no])
    assert (won.source, won.value) == ("platform", "not_ai_generated")
    assert won.detail is not None and "caption says ai_generated" in won.detail
    unreadable = Synthetic(source="c2pa", value="unknown", detail="unreadable")
    assert strongest([unreadable, Synthetic()]) == unreadable
    assert strongest([unreadable, hint]) == hint
    assert strongest([]) == Synthetic()


def test_verdict_for_an_observation() -> None:
    seen = ClipSeen(
        platform="youtube", clip_id="v", url="https://y/v", title="#veo", platform_synthetic=True
    )
    assert verdict_for(seen).source == "platform"
    assert verdict_for(seen.model_copy(update={"platform_synthetic": None})).source == "caption"
    assert verdict_for(seen.model_copy(update={"title": "x", "platform_synthetic": None})) == (
        Synthetic()
    )


def test_describe_says_the_value_who_says_so_and_the_generator() -> None:
    valid = Synthetic(
        source="c2pa", value="ai_generated", validated=True, generator="Sora 1.0", detail="d"
    )
    assert describe(valid) == "AI-generated (C2PA manifest, validated, generator Sora 1.0): d"
    assert "NOT validated" in describe(valid.model_copy(update={"validated": False}))
    assert describe(platform_verdict("youtube", False)).startswith(
        "Not AI-generated (the platform's label): YouTube"
    )
    assert describe(caption_verdict("#sora")).startswith("AI-generated (caption hints (weak))")
    assert describe(Synthetic()) == "AI provenance unknown: nothing says"


def test_measuring_reads_headers_only_and_sends_only_manifests_to_the_sdk(
    plain: Path, signed: Path, tmp_path: Path
) -> None:
    assert measure_c2pa(signed) is None  # a manifest within bounds: read_c2pa reads it
    assert measure_c2pa(plain) == Synthetic()
    # a file of 20,000 empty boxes is not walked to its end
    boxes = tmp_path / "boxes.mp4"
    ftyp = struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0)
    boxes.write_bytes(ftyp + struct.pack(">I4s", 8, b"free") * 20_000)
    started = time.perf_counter()
    verdict = measure_c2pa(boxes)
    assert verdict is not None and verdict.value == "unknown"
    assert "over 10000 entries" in (read_c2pa(boxes).detail or "")
    assert time.perf_counter() - started < 2.0
