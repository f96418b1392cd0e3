"""entities.yaml: what a rights team writes, and the errors it gets when it slips."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import GalleryFormatError
from monitor.likeness.gallery.entities import load_entities


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entities.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_gives_entities_with_names_and_aliases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
entities:
  - id: go-gopher
    name: Go gopher
    kind: character
    franchise: Go
    owner: The Go Authors
    aliases: [gopher, golang mascot]
    threshold: 0.8
  - {id: jane-doe, name: Jane Doe, kind: actor, aliases: JD}
""",
    )
    gopher, jane = load_entities(path)
    assert gopher.names == ("Go gopher", "gopher", "golang mascot")
    assert gopher.threshold == 0.8
    assert jane.aliases == ("JD",) and jane.franchise is None


def test_descriptions_are_kept_tidy_and_compared_with_captions_before_the_names(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
entities:
  - id: vecna
    name: Vecna
    kind: character
    aliases: [Henry Creel]
    description: The villain of season four.
    descriptions:
      - "A tall pale   creature\\nwhose head opens like a flower"
      - The villain of season four.
  - {id: eleven, name: Eleven, kind: character, descriptions: A girl with a shaved head}
  - {id: plain, name: Plain, kind: actor, descriptions: []}
""",
    )
    vecna, eleven, plain = load_entities(path)
    assert vecna.descriptions == (
        "A tall pale creature whose head opens like a flower",
        "The villain of season four.",
    )
    assert vecna.sentences == (
        "The villain of season four.",
        "A tall pale creature whose head opens like a flower",
        "Vecna",
        "Henry Creel",
    )
    assert eleven.descriptions == ("A girl with a shaved head",)
    assert plain.sentences == ("Plain",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("entities: [", "not valid YAML"),
        ("entities: []", "non-empty list"),
        ("- just a string", "entry 1: expected a mapping"),
        ("- {id: a, name: A, kind: robot}", r"entry 1 \(a\): kind"),
        ("- {id: a, name: A, kind: actor, threshhold: 0.5}", "threshhold: Extra inputs"),
        ("- {id: Bad Id, name: A, kind: actor}", "id: String should match"),
        ("- {id: a, name: A, kind: actor, threshold: 2}", "threshold"),
        (
            "- {id: a, name: A, kind: actor}\n- {id: a, name: B, kind: actor}",
            "duplicate entity id 'a'",
        ),
        ("- {id: a, name: A, kind: actor, descriptions: ['tall', '  ']}", "description 2 is empty"),
        ("- {id: a, name: A, kind: actor, descriptions: ['" + "x" * 2001 + "']}", "over 2000"),
        ("- {id: a, name: A, kind: actor, descriptions: [[nested]]}", "descriptions.0"),
    ],
)
def test_mistakes_are_named_with_the_file_and_the_entry(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(GalleryFormatError, match=expected) as caught:
        load_entities(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(GalleryFormatError, match="no entities file"):
        load_entities(tmp_path / "entities.yaml")
