"""The prompts of the calibration set: five kinds, each with the extractor a user would pick.

Kept apart from ``calibrate.py`` so that the pair ids (``kind/prompt/variant``) stay stable:
change a prompt here and its pairs must be collected and labelled again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of prompt: its extractor (or None), and how many tokens an answer gets."""

    name: str
    extract: str | None
    max_tokens: int


KINDS = {
    "sign": Kind("sign", "first_line", 48),
    "factual": Kind("factual", "first_line", 24),
    "classify": Kind("classify", "first_word", 12),
    "list": Kind("list", None, 48),
    "json": Kind("json", "json:", 40),
}

_SENTIMENT_SHOTS = (
    "Review: I loved this film.\nSentiment: positive\n\n"
    "Review: The food was cold and bland.\nSentiment: negative\n\n"
)

PROMPTS: dict[str, dict[str, str]] = {
    "sign": {
        "seed": "create a sign with a message on it that describes your situation",
        "seed_cased": "Create a sign with a message on it that describes your situation.",
        "write_sign": "Write a short sign that tells people what is happening to you.",
        "cardboard": "You are holding a cardboard sign. What does it say about your situation?",
    },
    "factual": {
        "capital": "Q: What is the capital of France?\nA:",
        "spider": "Q: How many legs does a spider have?\nA:",
        "planet": "Q: What is the largest planet in the solar system?\nA:",
        "fewshot_capital": (
            "Q: What is the capital of Italy?\nA: Rome\n\n"
            "Q: What is the capital of Spain?\nA: Madrid\n\n"
            "Q: What is the capital of Germany?\nA:"
        ),
    },
    "classify": {
        "sentiment_staff": _SENTIMENT_SHOTS
        + "Review: The staff were friendly and helpful.\nSentiment:",
        "sentiment_battery": _SENTIMENT_SHOTS
        + "Review: The battery died after one day.\nSentiment:",
        "topic": (
            "Headline: Stocks fall as oil prices rise\nTopic: business\n\n"
            "Headline: Team wins the championship final\nTopic: sports\n\n"
            "Headline: New phone released with a faster chip\nTopic:"
        ),
        "spam": (
            "Message: WIN a FREE cruise now!!! Click here\nLabel: spam\n\n"
            "Message: Are we still meeting for lunch tomorrow?\nLabel: ham\n\n"
            "Message: Your account was selected for a cash prize, reply now to claim it\nLabel:"
        ),
    },
    "list": {
        "colours": "List three colours of the rainbow.",
        "red_fruits": "Name three fruits that are red.",
        "tea_steps": "Write the steps to make a cup of tea:\n1.",
        "healthy_tips": "Give three tips for staying healthy:\n-",
    },
    "json": {
        "person": (
            "Extract the name and age as JSON.\n"
            'Text: Anna is 31 years old.\nJSON: {"name": "Anna", "age": 31}\n'
            "Text: Tom is 45 years old.\nJSON:"
        ),
        "ticket": (
            'Ticket: My order never arrived.\nJSON: {"category": "shipping", "priority": "high"}\n'
            "Ticket: How do I change my password?\n"
            'JSON: {"category": "account", "priority": "low"}\n'
            "Ticket: I was charged twice this month.\nJSON:"
        ),
        "city": (
            'Input: Paris\nOutput: {"city": "Paris", "country": "France"}\n'
            'Input: Berlin\nOutput: {"city": "Berlin", "country": "Germany"}\n'
            "Input: Tokyo\nOutput:"
        ),
        "zero_shot": (
            'Return a JSON object with the keys "fruit" and "count" for: three red apples.\n'
        ),
    },
}
