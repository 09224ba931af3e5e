"""The judge's measures on synthetic audio whose answers are known: click tracks at known
tempi, cadences in every key, silence, clipping, a loop; and `POST /analyze` on the app."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.judge.flaws import clipped_share, is_silent, loop_period
from gateway.judge.measure import Asked, measure
from gateway.judge.rhythm import TempoAgreement, tempo_agreement, tempo_of
from gateway.judge.tonality import (
    PITCHES,
    Key,
    KeyAgreement,
    Mode,
    key_agreement,
    key_of,
    parse_key,
)
from tests.media_factory import cadence, click_track, wav_of

RATE = 22050


def test_tempo_is_measured_within_two_percent_or_named_half_or_double() -> None:
    misses = []
    for bpm in range(60, 181, 10):
        measured = tempo_of(click_track(bpm, 12, RATE), RATE).bpm
        assert measured is not None, bpm
        if tempo_agreement(measured, bpm) is TempoAgreement.OFF or not any(
            abs(measured / (bpm * f) - 1) <= 0.02 for f in (1, 2, 0.5)
        ):
            misses.append((bpm, measured))
    assert misses == []


def test_tempo_agreement_names_half_and_double() -> None:
    assert tempo_agreement(121.0, 120) is TempoAgreement.MATCH
    assert tempo_agreement(240.0, 120) is TempoAgreement.DOUBLE
    assert tempo_agreement(61.0, 120) is TempoAgreement.HALF
    assert tempo_agreement(150.0, 120) is TempoAgreement.OFF


def test_the_key_of_every_major_and_minor_cadence() -> None:
    cases = [(tonic, minor) for tonic in range(12) for minor in (False, True)]
    right = 0
    for tonic, minor in cases:
        want = Key(PITCHES[tonic], Mode.MINOR if minor else Mode.MAJOR)
        right += key_of(cadence(tonic, minor, 6, RATE), RATE).key == want
    assert right / len(cases) >= 0.9, right


def test_keys_as_briefs_write_them_and_how_they_agree() -> None:
    assert parse_key("A minor") == Key("A", Mode.MINOR)
    assert parse_key("Bbm") == Key("A#", Mode.MINOR)
    assert parse_key("D♭ major") == Key("C#", Mode.MAJOR)
    assert parse_key("e") == Key("E", Mode.MAJOR)
    assert parse_key("atonal") is None
    c_major = Key("C", Mode.MAJOR)
    assert key_agreement(Key("A", Mode.MINOR), c_major) is KeyAgreement.RELATIVE
    assert key_agreement(Key("C", Mode.MINOR), c_major) is KeyAgreement.PARALLEL
    assert key_agreement(Key("G", Mode.MAJOR), c_major) is KeyAgreement.OFF


def test_flaws_silence_clipping_and_a_stuck_loop() -> None:
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(20 * RATE)).astype(np.float32)
    assert is_silent(np.zeros((1, RATE), np.float32)) and not is_silent(noise[None])
    assert clipped_share(np.clip(noise * 20, -1, 1)) > 0.1 and clipped_share(noise) == 0
    looped = np.tile(noise[: int(2.5 * RATE)], 8)
    assert loop_period(looped, RATE) == pytest.approx(2.5, abs=0.03)
    assert loop_period(noise, RATE) is None
    changing = np.concatenate([cadence(k, False, 3, RATE) for k in (0, 5, 7, 2, 9, 4, 11, 3)])
    assert loop_period(changing, RATE) is None
    drone = (0.3 * np.sin(2 * np.pi * 110 * np.arange(20 * RATE) / RATE)).astype(np.float32)
    assert loop_period(drone, RATE) is None


def test_a_measure_of_silence_has_no_tempo_key_or_level() -> None:
    analysis = measure(np.zeros((2, 4 * RATE), np.float32), RATE, Asked(tempo_bpm=120))
    assert analysis.flaws.silent and analysis.tempo.bpm is None and analysis.key.key is None
    assert analysis.level.integrated_lufs is None and analysis.tempo.agreement is None


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = GatewaySettings(
        captioner_url="http://127.0.0.1:9",
        composer_url="http://127.0.0.1:9",
        jobs_dir=str(tmp_path_factory.mktemp("jobs")),
        analyze_max_seconds=20,
        judge_jobs=False,  # /analyze serves whether or not jobs are judged
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_analyze_measures_an_upload_against_what_was_asked(client: TestClient) -> None:
    song = cadence(9, True, 12, RATE) + click_track(100, 12, RATE)
    files = {"audio": ("take.wav", wav_of(song, RATE), "audio/wav")}
    asked = {"tempo_bpm": "100", "key": "A minor", "duration": "10"}
    answer = client.post("/analyze", data=asked, files=files)
    assert answer.status_code == 200, answer.text
    analysis = answer.json()
    assert analysis["tempo"]["agreement"] in ("match", "double", "half")
    assert analysis["key"] == {**analysis["key"], "key": "A minor", "agreement": "match"}
    assert analysis["duration_error_s"] == pytest.approx(2.0, abs=0.01)
    assert analysis["flaws"]["silent"] is False and analysis["level"]["integrated_lufs"] < 0
    assert set(analysis["score_parts"]) == {"tempo", "key", "duration", "cleanliness"}
    assert analysis["score_parts"]["key"] == 1.0 and 0 < analysis["score"] <= 1
    exported = dict(  # the judge's cost, per audio measured
        line.rsplit(" ", 1) for line in client.get("/metrics").text.splitlines() if line[:1] != "#"
    )
    assert float(exported["gateway_judge_cpu_seconds_count"]) >= 1
    assert float(exported["gateway_judged_audio_seconds_total"]) >= 12


def test_analyze_refuses_what_it_cannot_measure(client: TestClient) -> None:
    long = {"audio": ("long.wav", wav_of(np.zeros(25 * RATE), RATE), "audio/wav")}
    too_long = client.post("/analyze", files=long)
    assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "audio_too_long"
    missing = client.post("/analyze", data={"tempo_bpm": "120"})
    assert missing.status_code == 422
    bad = client.post("/analyze", data={"tempo_bpm": "9000"}, files=long)
    assert bad.status_code == 422
    garbage = client.post("/analyze", files={"audio": ("x.wav", b"not audio", "audio/wav")})
    assert garbage.status_code in (415, 422) and "error" in garbage.json()


def test_the_score_weighs_what_was_asked() -> None:
    noise = 0.1 * np.random.default_rng(1).standard_normal(8 * RATE)  # no exact repeat: no loop
    take = (cadence(0, False, 8, RATE) + noise).astype(np.float32)[None]  # C major
    right = measure(take, RATE, Asked(key="C major", duration_s=8))
    wrong = measure(take, RATE, Asked(key="F# minor", duration_s=8))
    assert right.score_parts == {"key": 1.0, "duration": 1.0, "cleanliness": 1.0}
    assert right.score == 1.0 and wrong.score_parts["key"] == 0.0
    assert wrong.score == pytest.approx((0.5 + 1.0) / 2.5, abs=0.001)  # key weighs 1 of 2.5
    only_key = measure(take, RATE, Asked(key="F# minor"), {"key": 1.0, "cleanliness": 0.0})
    assert only_key.score == 0.0
    silent = measure(np.zeros((1, 4 * RATE), np.float32), RATE, Asked(key="C major"))
    assert silent.score == 0.0


def test_weights_name_known_parts_only() -> None:
    with pytest.raises(ValueError, match="weights"):
        GatewaySettings(judge_weights={"loudness": 1.0})
    with pytest.raises(ValueError, match="weights"):
        GatewaySettings(judge_weights={"tempo": 0.0, "key": 0.0})
