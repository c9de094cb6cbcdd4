"""The sign experiment: four spellings of one instruction, greedy, compared pairwise.

Run from the repository root (needs the ``local`` extra)::

    python scripts/sign_experiment.py                  # raw text completion (the default)
    python scripts/sign_experiment.py --endpoint chat  # the chat endpoint, for comparison

Prints the greedy outputs and, per metric, a 4x4 Markdown table of similarities.
"""

from __future__ import annotations

import argparse
import os
import time

from pytest_promptpert import CachedLLM
from pytest_promptpert.local import LocalModels, LocalServer
from pytest_promptpert.metrics import builtin_metrics

SIGN = "create a sign with a message on it that describes your situation"
SPELLINGS = {
    "create": SIGN,
    "create.": SIGN + ".",
    "Create": "C" + SIGN[1:],
    "Create.": "C" + SIGN[1:] + ".",
}
METRICS = ("ratio", "token_set_ratio")


def use_chat_endpoint() -> None:
    """Route local models through /v1/chat/completions instead (measurement only)."""
    start = LocalModels._start

    def chat_start(self: LocalModels, model: str, path: os.PathLike[str]) -> LocalServer:
        server = start(self, model, path)  # type: ignore[arg-type]
        server.endpoint = "chat"
        return server

    LocalModels._start = chat_start  # type: ignore[method-assign]


def table(metric_name: str, outputs: dict[str, str]) -> str:
    metric = builtin_metrics()[metric_name]
    names = list(outputs)
    lines = [
        f"| {metric_name} | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for a in names:
        cells = [f"{metric(outputs[a], outputs[b]):.2f}" for b in names]
        lines.append(f"| `{a}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", choices=("text", "chat"), default="text")
    parser.add_argument("--max-tokens", type=int, default=40)
    args = parser.parse_args()
    if args.endpoint == "chat":
        use_chat_endpoint()
    outputs: dict[str, str] = {}
    started = time.perf_counter()
    with CachedLLM(
        "local/gemma-3-270m", cache="off", temperature=0, max_tokens=args.max_tokens
    ) as llm:
        for name, prompt in SPELLINGS.items():
            outputs[name] = llm(prompt)
        calls, tokens = llm.stats.calls, llm.stats.tokens
    elapsed = time.perf_counter() - started
    print(f"## Sign experiment ({args.endpoint} endpoint, greedy, max_tokens={args.max_tokens})\n")
    for name, output in outputs.items():
        print(f"- `{SPELLINGS[name]!r}` ->\n  `{output!r}`")
    for metric_name in METRICS:
        print()
        print(table(metric_name, outputs))
    print(f"\n{calls} calls, {tokens} tokens, {elapsed:.1f}s")


if __name__ == "__main__":
    main()
