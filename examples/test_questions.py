"""Short factual questions in the Q:/A: format our FAQ bot uses."""

import pytest

QA = "Q: {question}\nA:"


@pytest.mark.promptpert(variants=["leading_space", "double_space", "strip_punctuation"])
def test_capital_of_france_is_robust(llm):
    answer = llm(QA.format(question="What is the capital of France?"))
    assert "Paris" in answer


# strip_period is left out: the answer holds, but its first token wins by a margin of only 0.32
# (a near-tie); doubled spaces in the question keep it at 0.71.
@pytest.mark.promptpert(variants=["double_space", "title"])
@pytest.mark.known_divergence(
    "title", reason="a Title Case question gets a circular answer with no 'Paris' in it"
)
def test_question_slot_only(llm, promptpert):
    # Only the user's question is perturbed, never the Q:/A: scaffolding around it.
    question = promptpert.perturb("What is the capital of France?")
    answer = llm(QA.format(question=question))
    assert "Paris" in answer


@pytest.mark.promptpert(variants=["trailing_space", "trailing_newline"])
@pytest.mark.known_divergence(
    "trailing_space",
    "trailing_newline",
    reason="after the 'A:' cue a trailing space or newline is out of distribution for the"
    " model's word pieces: it answers with digits or repeats the question",
)
def test_answer_cue_whitespace(llm):
    assert "Paris" in llm(QA.format(question="What is the capital of France?"))


FEW_SHOT = (
    "Question: What is the capital of Portugal?\nAnswer: Lisbon\n\n"
    "Question: What is the capital of Japan?\nAnswer:"
)


# Every variant keeps the answer, but not equally firmly: lower-cased, the prompt still gets
# "Tokyo", only far less likely. `pytest -v` lists each variant's log-prob shift, and the
# summary lists this one as an early warning (README "Log-prob sensitivity").
@pytest.mark.promptpert(variants=["lowercase", "add_period", "leading_space"], metric="exact")
def test_few_shot_capital(llm):
    assert llm(FEW_SHOT, stop=["\n"]).strip() == "Tokyo"
