"""Which entry the two readings of the FAQ put first (bot.knowledge.faq_vectors)."""

from __future__ import annotations

from array import array

import numpy

from bot.knowledge.faq_vectors import FaqVectors


def unit(*values: float) -> numpy.ndarray:
    vector = numpy.array(values, dtype=numpy.float32)
    return vector / numpy.linalg.norm(vector)


def vectors(phrasings: list[numpy.ndarray], owners: list[int]) -> FaqVectors:
    """Three entries whose texts point along the three axes."""
    prepared = FaqVectors(
        "v1",
        [],
        {"a": 0, "b": 1, "c": 2},
        numpy.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)]),
        numpy.array([True, True, True]),
    )
    prepared.phrasings = numpy.stack(phrasings)
    prepared.owners = numpy.array(owners)
    return prepared


def query(*values: float) -> array:
    return array("f", unit(*values).tobytes())


def test_the_entry_first_by_its_text_and_by_its_way_of_asking_is_agreed_on():
    prepared = vectors([unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1)], [0, 1, 2])
    scores, agreed = prepared.similarities(query(1, 0.2, 0))
    assert int(numpy.argmax(scores)) == 0
    assert agreed == 0


def test_readings_that_differ_agree_on_nothing():
    # Entry a's text is nearest, but the nearest way of asking belongs to b.
    prepared = vectors([unit(0, 0, 1), unit(0.9, 0.45, 0), unit(0, 0, 1)], [0, 1, 2])
    _, agreed = prepared.similarities(query(1, 0.3, 0))
    assert agreed is None


def test_without_ways_of_asking_nothing_is_agreed_on():
    prepared = vectors([unit(1, 0, 0)], [0])
    prepared.phrasings = None
    scores, agreed = prepared.similarities(query(1, 0, 0))
    assert agreed is None and int(numpy.argmax(scores)) == 0
