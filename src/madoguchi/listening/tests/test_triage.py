"""Triage: the shipped classifier beats keyword rules; influence and priority follow their documented formulas."""

from madoguchi.listening import evaluate
from madoguchi.listening.triage import classify, influence, priority, triage


def test_classifier_beats_the_keyword_baseline_on_held_out_posts(capsys):
    scores = evaluate.main()
    assert scores["kind"]["model"] > scores["kind"]["baseline"]
    assert scores["urgency"]["model"] >= scores["urgency"]["baseline"] - 0.02


def test_outages_and_legal_threats_are_urgent():
    assert classify("@madomobile 朝から全然ネットに繋がらない。障害？")[1] == 2
    assert triage("I will sue you, my lawyer is on it. Internet down for 3 days!!!").urgency == 2
    assert triage("Thanks for the lovely flight!").kind == "praise"


def test_influence_is_a_bounded_score():
    assert influence(None) == 0
    assert influence(10) < influence(10_000) < influence(10_000_000) == 60
    assert influence(10_000_000, verified=True, engagement=100_000) == 100


def test_priority_is_urgency_first_influence_second():
    assert priority(2, 0, "complaint") > priority(1, 100, "complaint")
    assert priority(1, 50, "question") > priority(1, 10, "question")
    assert priority(2, 100, "spam") == 0
