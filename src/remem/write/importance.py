"""How much a note is likely to matter later, rated without a model when it is written.

A score in [0, 1], from a few rules on its words (each with its reason; the sum is clipped):

- start at 0.3, a plain line of conversation;
- a greeting, thanks or acknowledgement alone ("hi", "ok thanks!", "lol") is worth little:
  0.05, whatever else it holds;
- a first-person statement ("I", "my", "we", "our") tells about the person: +0.15;
- a fact or state ("is", "am", "have", "live", "work", "born", "allergic") or a plan, a wish
  or a commitment ("will", "going to", "plan", "want", "need", "remember"): +0.15 each kind;
- a date, a weekday, a month or a time ("on 3 May", "next Friday", "at 5pm"), a number
  (an amount, an age, a phone number) or a name (a capitalised word inside the sentence):
  +0.1 each kind;
- an explicit ask to keep it ("remember", "don't forget", "important") gives at least 0.8;
- a question asks rather than tells: -0.1.

The organising model's rating, when it gives one, replaces this one (see `write/pipeline`).
"""

from __future__ import annotations

import re

BASE = 0.3
SMALL_TALK = 0.05
FIRST_PERSON = 0.15
FACT = 0.15
PLAN = 0.15
DATED = 0.1
NUMBER = 0.1
NAME = 0.1
ASKED_TO_KEEP = 0.8
QUESTION = -0.1

_SMALL_TALK = re.compile(
    r"^(?:(?:hi|hello|hey|yo|hiya|thanks|thank you|thx|ty|ok|okay|k|sure|cool|nice|great"
    r"|good|fine|yes|yeah|yep|no|nope|lol|haha|bye|goodbye|see you|cheers|got it|sounds good"
    r"|awesome|alright|right|oh|ah|wow|morning|good morning|good night|np|you too|me too"
    r"|same|indeed|exactly|agreed)[\s,.!?:;)(-]*)+$",
    re.IGNORECASE,
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|we|we're|our|us)\b", re.I)
_FACT = re.compile(
    r"\b(?:am|is|are|was|were|have|has|had|live|lives|lived|work|works|worked|born|married"
    r"|moved|allergic|prefer|prefers|like|likes|love|loves|hate|hates|own|owns|studied"
    r"|graduated|named|called)\b",
    re.I,
)
_PLAN = re.compile(
    r"\b(?:will|going to|gonna|plan|plans|planning|want|wants|need|needs|must|should"
    r"|intend|hope|decided|promise|appointment|deadline|meeting|trip|goal)\b",
    re.I,
)
_DATED = re.compile(
    r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?|today|tomorrow|yesterday"
    r"|tonight|next|last|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    r"|january|february|march|april|may|june|july|august|september|october|november"
    r"|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|\d{1,2}(?::\d{2})?\s?[ap]m"
    r"|birthday|anniversary|week|month|year)\b",
    re.I,
)
_NUMBER = re.compile(r"\d")
_KEEP = re.compile(r"\b(?:remember|don't forget|do not forget|important|never forget)\b", re.I)
# a capitalised word that does not start a sentence (and is not "I"): a name, often
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b(?!I\b)[A-Z][a-z]+")


def rate(text: str) -> float:
    """The importance of a note's text, 0 to 1 (the rules are in the module's docstring)."""
    stripped = text.strip()
    if not stripped or _SMALL_TALK.match(stripped):
        return SMALL_TALK
    score = BASE
    score += FIRST_PERSON if _FIRST_PERSON.search(stripped) else 0.0
    score += FACT if _FACT.search(stripped) else 0.0
    score += PLAN if _PLAN.search(stripped) else 0.0
    score += DATED if _DATED.search(stripped) else 0.0
    score += NUMBER if _NUMBER.search(stripped) else 0.0
    score += NAME if _NAME.search(stripped) else 0.0
    score += QUESTION if stripped.endswith("?") else 0.0
    if _KEEP.search(stripped):
        score = max(score, ASKED_TO_KEEP)
    return round(min(max(score, 0.0), 1.0), 3)
