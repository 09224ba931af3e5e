"""Key and mode: librosa's constant-Q chroma, matched against the Krumhansl–Kessler key
profiles (the probe-tone ratings every key finder since 1990 starts from).

librosa computes the chroma (the hard part) but names no key; essentia's key extractor does,
under the AGPL, which would bind every self-hosted gateway, so the profile match (a correlation
with 24 rotated templates) is written here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import librosa
import numpy as np
import numpy.typing as npt

PITCHES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
HOP = 2048


class Mode(StrEnum):
    MAJOR = "major"
    MINOR = "minor"


@dataclass(frozen=True)
class Key:
    tonic: str
    """One of `PITCHES` (sharps)."""
    mode: Mode

    def __str__(self) -> str:
        return f"{self.tonic} {self.mode.value}"

    @property
    def relative(self) -> Key:
        """The key with the same notes (A minor for C major)."""
        shift = -3 if self.mode is Mode.MAJOR else 3
        other = Mode.MINOR if self.mode is Mode.MAJOR else Mode.MAJOR
        return Key(PITCHES[(PITCHES.index(self.tonic) + shift) % 12], other)


class KeyAgreement(StrEnum):
    MATCH = "match"
    RELATIVE = "relative"
    """The same notes, the other mode's tonic (C major heard as A minor): a near miss."""
    PARALLEL = "parallel"
    """The same tonic, the other mode."""
    OFF = "off"


@dataclass(frozen=True)
class KeyEstimate:
    key: Key | None
    """None when nothing tonal was heard (silence, noise)."""
    confidence: float
    """The winning profile's correlation with the chroma (-1..1)."""


MIN_CONFIDENCE = 0.3


def key_of(mono: npt.NDArray[np.float32], rate: int) -> KeyEstimate:
    """The key whose profile best matches the piece's average chroma."""
    if not np.any(mono):
        return KeyEstimate(None, 0.0)
    chroma = librosa.feature.chroma_cqt(y=mono, sr=rate, hop_length=HOP)
    mean = chroma.mean(axis=1)
    if not np.any(mean > 0):
        return KeyEstimate(None, 0.0)
    best, score = None, -2.0
    for mode, profile in ((Mode.MAJOR, MAJOR_PROFILE), (Mode.MINOR, MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(mean, np.roll(profile, tonic))[0, 1])
            if r > score:
                best, score = Key(PITCHES[tonic], mode), r
    if score < MIN_CONFIDENCE:
        return KeyEstimate(None, round(score, 3))
    return KeyEstimate(best, round(score, 3))


_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(major|minor|maj|min|m)?\b", re.IGNORECASE)


def parse_key(text: str) -> Key | None:
    """A brief's key ("A minor", "F# major", "Bbm", "E") as a `Key`; None when it names none."""
    found = _KEY.match(text)
    if found is None:
        return None
    letter, accidental, mode = found.group(1).upper(), found.group(2), found.group(3) or ""
    name = letter + {"♯": "#", "♭": "b"}.get(accidental, accidental)
    name = {**FLATS, "E#": "F", "B#": "C"}.get(name, name)
    minor = mode.lower() in ("minor", "min") or mode == "m"
    return Key(name, Mode.MINOR if minor else Mode.MAJOR)


def key_agreement(measured: Key, asked: Key) -> KeyAgreement:
    if measured == asked:
        return KeyAgreement.MATCH
    if measured == asked.relative:
        return KeyAgreement.RELATIVE
    if measured.tonic == asked.tonic:
        return KeyAgreement.PARALLEL
    return KeyAgreement.OFF
