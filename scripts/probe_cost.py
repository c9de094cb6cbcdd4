"""What a log-prob probe costs on the bundled local model, against the same call without one.

Run from the repository root (needs the ``local`` extra)::

    python scripts/probe_cost.py

A probe (pytest_promptpert/probes.py) is a three-token call that asks for the 5 most likely
tokens at each step. llama-cpp-python computes those by sorting the whole 262k-token vocabulary
in Python for each token, so the probe costs more than its three tokens. Median of 3 calls each,
greedy, on two of the examples' prompts; wall-clock seconds, so other work on the machine
counts: rerun on a quiet machine for the floor.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request

from pytest_promptpert.local import REPEAT_PENALTY, SEED, LocalModels
from pytest_promptpert.logprobs import ANSWER_TOKENS, TOP_LOGPROBS

PROMPTS = {
    "few-shot capital": (
        "Question: What is the capital of Portugal?\nAnswer: Lisbon\n\n"
        "Question: What is the capital of Japan?\nAnswer:"
    ),
    "sign": "Create a sign with a message on it that describes your situation.",
}


def main() -> None:
    models = LocalModels()
    server = models.server_for("local/gemma-3-270m")

    def seconds(prompt: str, max_tokens: int, logprobs: int | None = None) -> float:
        body: dict[str, object] = {
            "model": server.alias,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "repeat_penalty": REPEAT_PENALTY,
            "seed": SEED,
        }
        if logprobs:
            body["logprobs"] = logprobs
        request = urllib.request.Request(
            f"{server.api_base}/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            json.load(response)
        return time.perf_counter() - started

    try:
        seconds(PROMPTS["sign"], 1)  # the model's first call warms it up
        for name, prompt in PROMPTS.items():
            plain = statistics.median(seconds(prompt, ANSWER_TOKENS) for _ in range(3))
            probe = statistics.median(
                seconds(prompt, ANSWER_TOKENS, TOP_LOGPROBS) for _ in range(3)
            )
            print(
                f"{name}: {ANSWER_TOKENS} tokens {plain:.2f} s, as a probe (top {TOP_LOGPROBS})"
                f" {probe:.2f} s"
            )
    finally:
        models.close()


if __name__ == "__main__":
    main()
