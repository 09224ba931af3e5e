"""One number per take: how well it fits what was asked, from its measures.

Each part is a credit in 0..1, and the score is their weighted mean over the parts that apply
(`GATEWAY_JUDGE_WEIGHTS`): tempo and key only when the brief asked for one, the length only when
one was asked, cleanliness always. A silent take scores 0 whatever else it measures."""

from __future__ import annotations

from gateway.judge.model import Analysis
from gateway.judge.rhythm import TempoAgreement
from gateway.judge.tonality import KeyAgreement

TEMPO_CREDIT = {
    TempoAgreement.MATCH: 1.0,
    TempoAgreement.DOUBLE: 0.5,
    TempoAgreement.HALF: 0.5,
    TempoAgreement.OFF: 0.0,
}
KEY_CREDIT = {
    KeyAgreement.MATCH: 1.0,
    KeyAgreement.RELATIVE: 0.6,
    KeyAgreement.PARALLEL: 0.4,
    KeyAgreement.OFF: 0.0,
}
DURATION_SLACK = 0.02
"""A length within 2 % of the one asked earns full credit, falling to none at 25 % off."""
DURATION_NONE = 0.25
CLIPPED_COST = 0.5
LOOP_COST = 0.5


def score_parts(analysis: Analysis) -> dict[str, float]:
    """Each part's credit, for the parts that apply to this take."""
    parts: dict[str, float] = {}
    if analysis.tempo.asked_bpm is not None:
        agreement = analysis.tempo.agreement
        parts["tempo"] = TEMPO_CREDIT[agreement] if agreement else 0.0  # asked, no beat heard
    if analysis.key.asked is not None:
        parts["key"] = KEY_CREDIT[analysis.key.agreement] if analysis.key.agreement else 0.0
    if analysis.asked_duration_s and analysis.duration_error_s is not None:
        off = abs(analysis.duration_error_s) / analysis.asked_duration_s
        parts["duration"] = round(
            min(1.0, max(0.0, (DURATION_NONE - off) / (DURATION_NONE - DURATION_SLACK))), 3
        )
    costs = CLIPPED_COST * analysis.flaws.clipped + LOOP_COST * (analysis.flaws.loop_s is not None)
    parts["cleanliness"] = max(0.0, 1.0 - costs)
    return parts


def score(analysis: Analysis, weights: dict[str, float]) -> float:
    """The weighted mean of `score_parts` (0 for a silent take), three decimals."""
    if analysis.flaws.silent:
        return 0.0
    parts = score_parts(analysis)
    total = sum(weights.get(name, 0.0) for name in parts)
    if total <= 0:
        return 0.0
    return round(sum(weights.get(name, 0.0) * credit for name, credit in parts.items()) / total, 3)
