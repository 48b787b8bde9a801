"""CIPHER and ICL, one test per rule; retrieval modes and retrieval accuracy."""

from __future__ import annotations

import pytest
from harness import FakeModel, by_purpose, make, step

from prose_sim.actors.inferrers.cipher import Cipher1, CipherN
from prose_sim.actors.inferrers.icl import Icl

pytestmark = pytest.mark.anyio


def counting_infer():
    counter = iter(range(1000))
    return lambda r: f"Preferences: learned-{next(counter)}"


async def test_cipher_learns_nothing_new_when_the_user_keeps_the_draft():
    m = FakeModel(by_purpose(infer=counting_infer()))
    cipher, _ = make(Cipher1, m)
    _, learned = await step(cipher, 0, draft_text="same text", user_text="same text")
    assert m.by_purpose("infer") == [] and learned.preferences == ""


async def test_cipher_infers_a_preference_from_the_difference():
    m = FakeModel(by_purpose(infer=counting_infer()))
    cipher, _ = make(Cipher1, m)
    _, learned = await step(cipher, 0, draft_text="DRAFT-MARKER", user_text="USER-MARKER")
    prompt = m.prompts("infer")[0]
    assert "DRAFT-MARKER" in prompt and "USER-MARKER" in prompt
    assert learned.preferences == "learned-0"


async def test_cipher1_reuses_the_single_best_preference_without_a_model_call():
    m = FakeModel(by_purpose(infer=counting_infer()))
    cipher, _ = make(Cipher1, m)
    for i in range(3):
        await step(cipher, i, draft_text=f"d{i}", user_text=f"u{i}")
    got, _ = await step(cipher, 3, draft_text="d", user_text="u")
    assert got.preferences == "learned-2" and m.by_purpose("merge") == []


async def test_cipherN_merges_exactly_three():
    m = FakeModel(by_purpose(infer=counting_infer(), merge="Preferences: merged"))
    cipher, _ = make(CipherN, m)
    for i in range(4):
        await step(cipher, i, draft_text=f"d{i}", user_text=f"u{i}")
    got, _ = await step(cipher, 4, draft_text="d", user_text="u")
    assert got.preferences == "merged"
    last_merge = m.prompts("merge")[-1]
    shown = [f"learned-{i}" for i in range(4) if f"learned-{i}" in last_merge]
    assert shown == ["learned-1", "learned-2", "learned-3"]


async def test_cipherN_aggregates_even_a_single_retrieved_preference():
    # released cipher.py, CipherNAgent.complete: the majority prompt runs whenever any is found
    m = FakeModel(by_purpose(infer=counting_infer(), merge="the aggregated phrase"))
    cipher, _ = make(CipherN, m)
    await step(cipher, 0, draft_text="d0", user_text="u0")
    got, _ = await step(cipher, 1, draft_text="d", user_text="u")
    assert len(m.by_purpose("merge")) == 1 and "learned-0" in m.prompts("merge")[0]
    assert got.preferences == "the aggregated phrase"  # the whole reply is the preference


async def test_cipher_infer_shows_no_document_and_keeps_the_whole_reply():
    m = FakeModel(by_purpose(infer="  Short sentences and a formal tone.  "))
    cipher, _ = make(Cipher1, m)
    _, learned = await step(cipher, 0, draft_text="d", user_text="u", document="THE-DOCUMENT-BODY")
    assert "THE-DOCUMENT-BODY" not in m.prompts("infer")[0]
    assert learned.preferences == "Short sentences and a formal tone."
    assert (
        m.by_purpose("infer")[0].response_prefix == ""
    )  # no format keyword: the reply is the answer


async def test_icl_can_repeat_the_current_document_as_the_released_prompt_does():
    icl, _ = make(Icl, FakeModel(by_purpose()), icl_example_document="current")
    for i in range(2):
        await step(icl, i, draft_text="d", user_text=f"USER-{i}", document=f"DOC-{i}")
    got, _ = await step(icl, 2, draft_text="d", user_text="u", document="CURRENT-DOC")
    assert got.examples == [("CURRENT-DOC", "USER-1"), ("CURRENT-DOC", "USER-0")]


async def test_icl_shows_the_examples_own_documents():
    m = FakeModel(by_purpose())
    icl, _ = make(Icl, m)
    for i in range(3):
        await step(icl, i, draft_text="d", user_text=f"USER-{i}", document=f"DOC-{i}")
    got, _ = await step(icl, 3, draft_text="d", user_text="u", document="CURRENT-DOC")
    assert got.examples == [("DOC-2", "USER-2"), ("DOC-1", "USER-1"), ("DOC-0", "USER-0")]
    assert all(doc != "CURRENT-DOC" for doc, _ in got.examples)
    assert m.requests == []  # ICL learns without model calls


async def test_icl_keeps_at_most_k_examples():
    icl, _ = make(Icl, FakeModel(by_purpose()), num_examples=2)
    for i in range(4):
        await step(icl, i, draft_text="d", user_text=f"u{i}")
    got, _ = await step(icl, 4, draft_text="d", user_text="u")
    assert len(got.examples) == 2


async def test_most_recent_retrieval_crosses_users_and_reports_whose():
    icl, _ = make(Icl, FakeModel(by_purpose()), retrieval_mode="most_recent", num_examples=3)
    await step(icl, 0, draft_text="d", user_text="u", persona="imdb")
    await step(icl, 1, draft_text="d", user_text="u", persona="cnn_dailymail")
    got, _ = await step(icl, 2, draft_text="d", user_text="u", persona="cnn_dailymail")
    assert got.retrieved == ["cnn_dailymail", "imdb"]


class WordEmbedder:
    """A test double: documents sharing their first word are identical vectors."""

    async def embed(self, key, text):
        first = text.split()[0]
        return [1.0, 0.0] if first == "apples" else [0.0, 1.0]


async def test_cosine_retrieval_ranks_by_document_similarity():
    icl, _ = make(
        Icl,
        FakeModel(by_purpose()),
        retrieval_mode="cosine_sim",
        num_examples=1,
        embedder=WordEmbedder(),
    )
    await step(
        icl, 0, draft_text="d", user_text="about apples", persona="imdb", document="apples are red"
    )
    await step(
        icl,
        1,
        draft_text="d",
        user_text="about pears",
        persona="cnn_dailymail",
        document="pears are green",
    )
    got, _ = await step(
        icl, 2, draft_text="d", user_text="u", persona="imdb", document="apples again"
    )
    assert got.examples == [("apples are red", "about apples")] and got.retrieved == ["imdb"]


# --- the released code's ways, each behind a knob (docs/fidelity.md) -----------------


async def test_icl_released_order_lists_the_oldest_example_first():
    # in_context_learning.py: InContextLearningAgent.complete shows the examples as
    # ExampleRetriever.get_most_similar_examples returns them (exact_match: the last k, oldest
    # first), without PROSE's reverse()
    icl, _ = make(Icl, FakeModel(by_purpose()), num_examples=2, retrieved_order="released")
    for i in range(3):
        await step(icl, i, draft_text="d", user_text=f"USER-{i}", document=f"DOC-{i}")
    got, _ = await step(icl, 3, draft_text="d", user_text="u")
    assert got.examples == [("DOC-1", "USER-1"), ("DOC-2", "USER-2")]


async def test_cipherN_released_merge_list_is_oldest_first_with_an_empty_preference_as_none():
    # cipher.py: CipherNAgent.complete lists pref.in_natural_language(mode="string") for each
    # retrieved example in the retriever's order (oldest first); an empty stored set is None
    m = FakeModel(by_purpose(infer=counting_infer(), merge="MERGED"))
    cipher, _ = make(CipherN, m, retrieved_order="released", merge_list="released")
    await step(cipher, 0, draft_text="same", user_text="same")  # learns nothing: stores ""
    await step(cipher, 1, draft_text="d1", user_text="u1")  # learned-0
    await step(cipher, 2, draft_text="d2", user_text="u2")  # learned-1
    m.requests.clear()
    await step(cipher, 3, draft_text="d", user_text="u")
    prompt = m.prompts("merge")[0]
    assert prompt.index("- None\n") < prompt.index("- learned-0") < prompt.index("- learned-1")


async def test_cipherN_released_merge_list_merges_even_when_every_retrieved_preference_is_empty():
    # cipher.py: CipherNAgent.complete aggregates whenever an example is retrieved
    m = FakeModel(by_purpose(merge="MERGED"))
    cipher, _ = make(CipherN, m, merge_list="released")
    await step(cipher, 0, draft_text="same", user_text="same")
    got, _ = await step(cipher, 1, draft_text="x", user_text="x")
    assert "- None" in m.prompts("merge")[0] and got.preferences == "MERGED"
    plain, _ = make(CipherN, FakeModel(by_purpose(merge="MERGED")))
    await step(plain, 0, draft_text="same", user_text="same")
    got, _ = await step(plain, 1, draft_text="x", user_text="x")
    assert got.preferences == ""  # learned_only: nothing to merge


async def test_cipher_released_answer_is_the_whole_reply_verbatim():
    # cipher.py: Cipher1Agent.learn stores WritingPreferenceSet(self.llm.prompt_llm(prompt)):
    # the reply as it is (not lower-cased, nothing stripped); it is the scored string
    reply = '**Preferences:** "Short Sentences"'
    m = FakeModel(by_purpose(infer=reply))
    cipher, _ = make(Cipher1, m, answer_normalisation="released")
    _, learned = await step(cipher, 0, draft_text="d", user_text="u")
    got, _ = await step(cipher, 1, draft_text="d", user_text="u")
    assert learned.preferences == reply and got.preferences == reply
    forgiving, _ = make(Cipher1, FakeModel(by_purpose(infer=reply)))
    _, learned = await step(forgiving, 0, draft_text="d", user_text="u")
    assert learned.preferences == "Short Sentences"


async def test_cipher_exact_equality_infers_from_a_whitespace_only_edit():
    # trajectory_logger.py: WritingTrajectory.__eq__ compares the strings exactly
    m = FakeModel(by_purpose(infer=counting_infer()))
    cipher, _ = make(Cipher1, m, text_equality="exact")
    await step(cipher, 0, draft_text="the same words", user_text="the  same words")
    assert len(m.by_purpose("infer")) == 1
    m2 = FakeModel(by_purpose(infer=counting_infer()))
    words, _ = make(Cipher1, m2)
    await step(words, 0, draft_text="the same words", user_text="the  same words")
    assert m2.by_purpose("infer") == []


async def test_cipher_preference_lines_as_inferred_keep_the_reply_on_one_line():
    # preference_conditioned_writing_agent.py: get_task_prompt lists the preference set's
    # items; CIPHER's set holds the reply as one item, "; " and all
    m = FakeModel(by_purpose(infer="be brief; use similes"))
    cipher, _ = make(Cipher1, m, preference_lines="as_inferred", answer_normalisation="released")
    await step(cipher, 0, draft_text="d", user_text="u")
    got, _ = await step(cipher, 1, draft_text="d", user_text="u")
    assert got.components == ["be brief; use similes"]
