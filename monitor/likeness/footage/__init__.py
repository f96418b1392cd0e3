"""Known footage: re-uploads of a protected film or show, found by perceptual hashes of its frames.

Likeness finds a character in new pictures; a re-upload of the real footage is found faster and
more surely by matching PDQ hashes of its frames against those of the reference clips, whatever
it shows.
"""

from __future__ import annotations

from monitor.likeness.footage.fingerprint import (
    FINGERPRINT_SUFFIX,
    Fingerprint,
    fingerprint,
    fingerprint_file,
)
from monitor.likeness.footage.hashes import FrameHashes, hash_query, hash_reference
from monitor.likeness.footage.index import HashIndex, HashMatches
from monitor.likeness.footage.match import (
    FootageClip,
    FootageIndex,
    FootageMatch,
    TimeRange,
    query_hashes,
)

__all__ = [
    "FINGERPRINT_SUFFIX",
    "Fingerprint",
    "FootageClip",
    "FootageIndex",
    "FootageMatch",
    "FrameHashes",
    "HashIndex",
    "HashMatches",
    "TimeRange",
    "fingerprint",
    "fingerprint_file",
    "hash_query",
    "hash_reference",
    "query_hashes",
]
