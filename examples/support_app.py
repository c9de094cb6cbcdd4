"""A small support application that calls the model itself, through the ``openai`` SDK.

Nothing here knows about pytest-promptpert: it is the code under test, as its authors wrote it.
"""

from __future__ import annotations

import os

from openai import OpenAI

# A module-level client, built at import time, as applications usually do. The key is only
# needed when the calls really go to OpenAI (the example's tests route them to the local model).
client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-under-route-model"))
MODEL = os.environ.get("SUPPORT_MODEL", "gpt-4o-mini")

CATEGORIES = ("billing", "technical", "account")

CLASSIFY = """Ticket: I was charged twice this month.
Category: billing

Ticket: The app crashes when I open it.
Category: technical

Ticket: I cannot log in with my password.
Category: account

Ticket: {ticket}
Category:"""


def classify(ticket: str) -> str:
    """One of CATEGORIES, or "unknown"."""
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": CLASSIFY.format(ticket=ticket)}],
        max_tokens=3,
        temperature=0,
    )
    words = (response.choices[0].message.content or "").strip().lower().split()
    first = words[0].strip(".,:;") if words else ""
    return first if first in CATEGORIES else "unknown"


def summarize(text: str) -> str:
    """A one-paragraph summary of *text*."""
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"{text}\n\nIn one sentence, this text says that"}],
        max_tokens=40,
        temperature=0,
    )
    text = (response.choices[0].message.content or "").strip()
    return text.split("\n\n", 1)[0]  # one paragraph, whatever the model went on with
