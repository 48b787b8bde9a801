"""Verifiable preferences: each checker on hand-made emails/summaries, and component matching."""

from __future__ import annotations

import re

import pytest

from prose_sim.metrics.verifiable import CHECKERS, Checker, checker_for
from prose_sim.world.personas import builtin_catalog

# Persona components no text-only rule decides (precision over coverage): checker_for gives None.
UNCHECKABLE = {
    "adopt a rhyming structure",
    "adopt a step-by-step structure",
    "be blatantly sarcastic",
    "be intensely emotional",
    "be sharply critical",
    "call to action",
    "casual tone",
    "clear",
    "conversational",
    "engaging",
    "immersive",
    "include a simile",
    "include alliterations",
    "include hyperboles",
    "include modern slang",
    "include onomatopoeias",
    "include personifications",
    "informal",
    "interactive",
    "invoke personal reflection",
    "open the email using a movie reference",
    "parallel structure",
    "personalized",
    "playful language",
    "positive",
    "professional tone",
    "respectful",
    "show emotions",
    "simple English",
    "skillful foreshadowing",
    "storytelling",
    "straight to the points",
    "structured",
    "style targeted to young children",
    "tweet style",
    "use archaic language",
    "use imagery",
    "write in the style of a children's book",
    "write in the style of a podcast",
    "write in the style of a screenplay",
    "write in the style of a tweet",
    "write in the style of old timey radio",
    "write using a stream-of-consciousness style",
    "write using assertive expressions",
    "write using conditional expressions",
}


@pytest.mark.parametrize(
    ("component", "name"),
    [
        ("use emojis", "emojis"),
        ("with emojis", "emojis"),
        ('use ampersands (&) instead of "and"s', "ampersands"),
        ("use ALLCAPS to emphasize certain words", "allcaps_emphasis"),
        ("use semicolons (;) when possible", "semicolons"),
        ("write using bullet points", "bullet_points"),
        ("bullet points", "bullet_points"),
        ("include rhetorical questions", "rhetorical_questions"),
        ("be highly inquisitive", "inquisitive"),
        ("inquisitive", "inquisitive"),
        ("use parenthetical asides", "parenthetical_asides"),
        ("include several short and punchy sentences", "short_sentences"),
        ("short sentences", "short_sentences"),
        ("include several long and flowing sentences", "long_sentences"),
        ("adopt a second person narrative", "second_person"),
        ("second person narrative", "second_person"),
        ("adopt a third person narrative", "third_person"),
        ("sign off the email using an epithet", "epithet_signoff"),
        ("adopt a question-answering style structure", "question_answer_structure"),
        ("question answering style", "question_answer_structure"),
        ("opening with a question-answer structure", "question_answer_structure"),
        ("no closing", "no_closing"),
        ("thankful closing", "thankful_closing"),
        ("professional greeting and closing", "professional_greeting_closing"),
        ("brief", "brief"),
        ("keep it brief", "brief"),
        ("USE EMOJIS", "emojis"),
    ],
)
def test_component_maps_to_checker(component, name):
    checker = checker_for(component)
    assert checker is not None and checker.name == name


@pytest.mark.parametrize(
    "component",
    ["be intensely emotional", "use imagery", "write in the style of a podcast", "call to action"],
)
def test_uncheckable_components_map_to_none(component):
    assert checker_for(component) is None


def test_every_catalog_component_is_checkable_or_listed_uncheckable():
    components = {c for p in builtin_catalog() for c in p.components}
    for component in components:
        assert (checker_for(component) is None) == (component in UNCHECKABLE), component
    assert components >= UNCHECKABLE  # the list holds no stale entries


def test_no_catalog_component_matches_two_checkers():
    for component in {c for p in builtin_catalog() for c in p.components}:
        matching = [c.name for c in CHECKERS if re.search(c.pattern, component, re.IGNORECASE)]
        assert len(matching) <= 1, (component, matching)


def test_checkers_are_unique_hashable_and_described():
    assert len({c.name for c in CHECKERS}) == len(CHECKERS) == len(set(CHECKERS))
    for checker in CHECKERS:
        assert isinstance(checker, Checker)
        assert checker.description and "\n" not in checker.description


# (checker name, text, expected): at least one positive and one negative per checker.
CASES = [
    ("emojis", "Hi team,\n\nWe shipped the release today 🚀 Great work!\n\nBest,\nSam", True),
    ("emojis", "Loved the demo ❤️ see you Friday.", True),
    ("emojis", "The summit closed with a pledge ✨ to cut emissions.", True),
    ("emojis", "Hi team,\n\nWe shipped the release today. Great work!\n\nBest,\nSam", False),
    ("emojis", "Prices rose 3% (see the chart) — analysts expect more; stay tuned.", False),
    ("ampersands", "Research & development spent more on tools & training this year.", True),
    ("ampersands", "Sales & marketing met and agreed on the plan.", True),
    ("ampersands", "Sales and marketing met and agreed on the plan & the budget.", False),
    ("ampersands", "Our R&D team covered the Q&A session.", False),
    ("ampersands", "No connectives at all here.", False),
    ("allcaps_emphasis", "This is a REALLY important deadline, so please do NOT miss it.", True),
    ("allcaps_emphasis", "The CEO met NASA officials in the USA to discuss AI policy.", False),
    ("allcaps_emphasis", "PLEASE READ THIS NOTICE CAREFULLY BEFORE FRIDAY.", False),
    ("allcaps_emphasis", "Nothing shouted here at all.", False),
    ("semicolons", "The launch slipped; the team needs another week.", True),
    ("semicolons", 'He said "wait"; we did.', True),
    ("semicolons", "The launch slipped, and the team needs another week.", False),
    ("semicolons", "Fish &amp; chips were served. Wink ;)", False),
    ("bullet_points", "Updates:\n- Budget approved\n- Hiring paused\n- Offsite moved", True),
    ("bullet_points", "Steps:\n1. Open the file\n2. Review the totals", True),
    ("bullet_points", "Notes:\n• Budget approved\n* Hiring paused", True),
    ("bullet_points", "Updates:\n- Budget approved\n\nThe rest is unchanged.", False),
    ("bullet_points", "**Budget** approved.\n---\n**Hiring** paused.", False),
    (
        "rhetorical_questions",
        "Hi Ana,\n\nWho doesn't love a long weekend? We close Friday.\n\nBest,\nSam",
        True,
    ),
    (
        "rhetorical_questions",
        "Hi Ana,\n\nWe close Friday for the long weekend.\n\nBest,\nSam",
        False,
    ),
    ("inquisitive", "What drove the delay? Was it staffing? I would love to know more.", True),
    ("inquisitive", "What drove the delay? I would love to know more.", False),
    ("parenthetical_asides", "The council (after much debate) approved the plan.", True),
    ("parenthetical_asides", "See item (1) and use ampersands (&).", False),
    ("parenthetical_asides", "Read [the report](https://example.com/the-report) today.", False),
    (
        "short_sentences",
        "Hi Jo,\n\nWe won. The client signed. Champagne is on me! Details follow soon.\n\nCheers,\nSam",
        True,
    ),
    (
        "short_sentences",
        (
            "Hi Jo,\n\nAfter months of careful negotiation the client finally signed the contract "
            "this morning. I will share the full details of the agreement with everyone at "
            "tomorrow's meeting.\n\nCheers,\nSam"
        ),
        False,
    ),
    (
        "long_sentences",
        (
            "The committee, having reviewed every proposal that arrived before the deadline, "
            "concluded that the riverside plan offered the best balance of cost, access and "
            "long-term benefit to residents. It also noted that construction could begin in "
            "spring, provided that the funding agreed last year arrives on time and the "
            "contractors confirm their schedules within the next month."
        ),
        True,
    ),
    (
        "long_sentences",
        "The committee met. It chose the riverside plan. Work starts in spring.",
        False,
    ),
    ("second_person", "You did it! Your hard work paid off, and you should be proud.", True),
    ("second_person", "I think my team did well, and I hope you agree.", False),
    (
        "second_person",
        "You did it, and your team too. I told my boss I was proud of my team and me.",
        False,
    ),
    (
        "third_person",
        "The mayor unveiled her plan on Monday. It cuts bus fares, and residents welcomed it.",
        True,
    ),
    ("third_person", "The mayor unveiled her plan. We think it will help you.", False),
    ("third_person", "Let's review the budget on Monday; it looks tight.", False),
    ("third_person", "Budget approved on Monday.", False),
    ("epithet_signoff", "Great work on the launch.\n\nCheers,\nAlex the Bold", True),
    ("epithet_signoff", "Great work on the launch.\n\nBest,\nSam, Destroyer of Deadlines", True),
    ("epithet_signoff", "Great work on the launch.\n\nYour ever-curious colleague,\nSam", True),
    ("epithet_signoff", "Great work on the launch.\n\nCheers, Sam, the deadline slayer", True),
    ("epithet_signoff", "Great work on the launch.\n\nBest regards,\nSam", False),
    ("epithet_signoff", "Great work on the launch.\n\nYours truly,\nSam Smith", False),
    ("epithet_signoff", "Great work on the launch.\n\nEnjoy the weekend!", False),
    ("question_answer_structure", "What changed this quarter? Revenue grew by ten percent.", True),
    (
        "question_answer_structure",
        "Hi all,\n\nQuick update. Why the delay? The vendor slipped. What now? We launch in May.\n\nBest,\nSam",
        True,
    ),
    ("question_answer_structure", "Revenue grew by ten percent. Why? Costs fell.", False),
    ("question_answer_structure", "Revenue grew by ten percent this quarter.", False),
    ("no_closing", "Hi Sam,\n\nThe report is attached. Please review it by Friday.", True),
    ("no_closing", "Hi Sam,\n\nThe report is attached. Thanks for your help!", True),
    ("no_closing", "Hi Sam,\n\nThe report is attached.\n\nBest regards,\nAna", False),
    ("no_closing", "Hi Sam,\n\nThe report is attached.\n\nCheers, Ana", False),
    ("no_closing", "Hi Sam,\n\nThe report is attached.\n\nThanks!", False),
    (
        "thankful_closing",
        "Hi Sam,\n\nThe report is attached.\n\nThanks so much for your help,\nAna",
        True,
    ),
    (
        "thankful_closing",
        "Hi Sam,\n\nThe report is attached.\n\nI really appreciate it.\nAna",
        True,
    ),
    (
        "thankful_closing",
        "Thanks for the note.\n\nThe report is attached.\nIt covers Q3.\nBest,\nAna",
        False,
    ),
    (
        "professional_greeting_closing",
        "Dear Dr. Lee,\n\nPlease find the report attached.\n\nKind regards,\nAna Ruiz",
        True,
    ),
    (
        "professional_greeting_closing",
        "Subject: Report\n\nGood morning team,\n\nAll done.\n\nSincerely,\nAna",
        True,
    ),
    ("professional_greeting_closing", "Hey Lee!\n\nReport attached.\n\nKind regards,\nAna", False),
    ("professional_greeting_closing", "Dear Dr. Lee,\n\nPlease find the report attached.", False),
    ("brief", "Hi Sam,\n\nBudget approved 🎉 We start Monday.\n\nBest,\nAna", True),
    ("brief", " ".join(["word"] * 61), False),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES)
def test_checker(name, text, expected):
    [checker] = [c for c in CHECKERS if c.name == name]
    assert checker.check(text) is expected


def test_every_checker_has_a_positive_and_a_negative_case():
    for checker in CHECKERS:
        outcomes = {expected for name, _, expected in CASES if name == checker.name}
        assert outcomes == {True, False}, checker.name


def test_brief_threshold_is_sixty_words():
    brief = checker_for("brief")
    assert brief.check(" ".join(["word"] * 60)) and not brief.check(" ".join(["word"] * 61))
