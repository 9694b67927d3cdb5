"""Refuse a probe that cannot score any tag (a vocabulary the set does not spell, or tags no split can measure),
before any embedding is probed or run logged: otherwise every metric is nan and the run still looks done."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)
SHOWN_TAGS = 20


def closest(asked: Sequence[str], available: set[str]) -> str:
    """'Slow' -> 'slow' for every asked tag with a near spelling in the set (same letters first)."""
    by_case = {tag.lower(): tag for tag in available}
    pairs = []
    for tag in asked:
        match = by_case.get(tag.lower()) or next(iter(difflib.get_close_matches(tag, available, n=1)), None)
        if match is not None:
            pairs.append(f"{tag!r} -> {match!r}")
    return ", ".join(pairs) or "none"


def listing(tags: set[str]) -> str:
    shown = sorted(tags)[:SHOWN_TAGS]
    more = f", ... ({len(tags)} in all)" if len(tags) > SHOWN_TAGS else ""
    return ", ".join(shown) + more


def check_asked_tags(asked: Sequence[str], available: set[str], where: str) -> None:
    """None of the asked tags in the set is an error naming them, the closest spellings and the fix; some missing
    is a warning (those tags are skipped)."""
    missing = [tag for tag in asked if tag not in available]
    if not missing:
        return
    hint = f"closest: {closest(missing, available)}; the set has: {listing(available)}"
    if len(missing) == len(asked):
        raise ValueError(
            f"none of the tags asked ({', '.join(asked)}) occurs in {where} ({hint}): write them as the set spells "
            "them in the --tags file, or leave --tags out to probe every tag of the set"
        )
    logger.warning("tags asked but absent from %s, skipped by every metric: %s (%s)", where, ", ".join(missing), hint)


def check_scorable(vocabulary: Sequence[str], tags_by_split: Mapping[str, Sequence[Sequence[str]]]) -> None:
    """At least one tag must have positive training tracks and both positive and negative test tracks."""
    test = tags_by_split["test"]

    def scorable(tag: str) -> bool:
        positives = sum(tag in tags for tags in test)
        return any(tag in tags for tags in tags_by_split["train"]) and 0 < positives < len(test)

    if not any(scorable(tag) for tag in vocabulary):
        raise ValueError(
            f"no tag of the probe ({listing(set(vocabulary))}) can be scored: none has positive training tracks "
            "and both positive and negative test tracks; check the set's tags and splits (or --tags)"
        )
