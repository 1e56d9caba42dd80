"""What plain patterns can read reliably from what a person says about themselves.

Precision over recall: each pattern wants the first person ("I live in", "my dog"), a
capitalised name where a name is meant, and a statement (not a question, not negated, not
hypothetical). A sentence that fails any check fills nothing; a missed fact costs less
than a wrong one in someone's profile.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

__all__ = [
    "Found",
    "dates_in",
    "emails_in",
    "phones_in",
    "sentences",
    "statements_about_self",
    "urls_in",
]

MAX_VALUE_WORDS = 5
MAX_VALUE_CHARS = 120
# a statement about oneself is a sentence, not a page: longer "sentences" (text without
# punctuation) are skipped, and a match looks back this far for negation and the like
MAX_SENTENCE_CHARS = 1000
CLAUSE_LOOKBACK = 200


@dataclass(frozen=True)
class Found:
    """One slot value a sentence states, and the sentence."""

    slot: str
    value: str
    sentence: str


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_NEGATION = re.compile(
    r"(?i)\b(?:not|never|no longer|nor|neither|nobody|n't|dont|didnt|doesnt|cannot)\b|n't\b"
)
_HYPOTHETICAL = re.compile(
    r"(?i)\b(?:if|would|wish|imagine|suppose|supposing|maybe|perhaps|might|could|should|"
    r"hope|hoping|want|wanted|plan|planning|dream|dreaming|someday|whether|pretend|unless)\b"
)
_OTHERS = re.compile(r"(?i)\b(?:his|her|hers|their|theirs|its|he|she|they)\b|\w's\b")
_CLAUSE = re.compile(r"[,;:(]|\b(?:but|and|because|so)\b", re.IGNORECASE)

# -- contact details and dates ---------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d ().-]{5,20}\d(?!\w)")
_PHONE_WORDS = re.compile(
    r"(?i)\b(?:phone|number|cell|mobile|call me|text me|reach me|whatsapp|tel)\b"
)
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"'()\[\]{}]+[^\s<>\"'()\[\]{}.,;:!?]")
_URL_WORDS = re.compile(
    r"(?i)\bmy (?:own )?(?:website|web site|site|blog|portfolio|homepage|home page|page|"
    r"channel|profile|shop)\b"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:1[89]|20)\d\d)"
_DATES = [
    re.compile(rf"(?i)\b{_YEAR}-(?P<mon>[01]\d)-(?P<day>[0-3]\d)\b"),
    re.compile(rf"(?i)\b{_MONTH} {_DAY}(?:,? {_YEAR})?\b"),
    re.compile(rf"(?i)\b{_DAY} (?:of )?{_MONTH}(?:,? {_YEAR})?\b"),
]


def emails_in(text: str) -> list[str]:
    """Email addresses, in order of appearance, each once."""
    return list(dict.fromkeys(m.group(0).rstrip(".") for m in _EMAIL.finditer(text)))


def phones_in(text: str, *, need_context: bool = True) -> list[str]:
    """Phone numbers (7 to 15 digits). With `need_context` a number counts only in a
    sentence that says it is one ("my number", "call me") or in international form (+...),
    since bare digit runs are more often amounts, ids or dates."""
    found = []
    for sentence in sentences(text):
        said = _PHONE_WORDS.search(sentence) is not None
        for match in _PHONE.finditer(sentence):
            raw = match.group(0).strip()
            digits = re.sub(r"\D", "", raw)
            if not 7 <= len(digits) <= 15 or _looks_like_date(raw):
                continue
            if need_context and not (said or raw.startswith("+")):
                continue
            found.append(raw)
    return list(dict.fromkeys(found))


def urls_in(text: str) -> list[str]:
    """Web addresses, in order of appearance, each once."""
    return list(dict.fromkeys(m.group(0) for m in _URL.finditer(text)))


def dates_in(text: str) -> list[str]:
    """Calendar dates as ISO text: `1990-05-03`, or `--05-03` when the year is not said."""
    found: list[tuple[int, int, str]] = []
    for pattern in _DATES:
        for match in pattern.finditer(text):
            iso = _iso(match)
            overlaps = any(s < match.end() and match.start() < e for s, e, _ in found)
            if iso and not overlaps:
                found.append((match.start(), match.end(), iso))
    return list(dict.fromkeys(iso for _, _, iso in sorted(found)))


def _iso(match: re.Match[str]) -> str | None:
    parts = match.groupdict()
    month = int(parts["mon"]) if parts.get("mon") else _MONTHS[parts["month"].lower()]
    day = int(parts["day"])
    year = int(parts["year"]) if parts.get("year") else 2000  # a leap year checks 29 Feb
    try:
        date(year, month, day)
    except ValueError:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}" if parts.get("year") else f"--{month:02d}-{day:02d}"


def _looks_like_date(raw: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}", raw))


# -- statements about oneself ------------------------------------------------------------------

# text is read with curly apostrophes made straight (see `sentences`)
_WORD = r"[A-Z][\w'.-]{0,40}(?![\w'-])"
_PLACE = rf"(?P<value>{_WORD}(?:,? (?:(?:de|da|do|del|of|the|la|le|am)\s)?{_WORD}){{0,3}})"
_NAME = r"(?P<value>[A-Z][a-z'-]{1,30}(?![\w'-])(?: [A-Z][a-z'-]{1,30}(?![\w'-]))?)"
_ENDS = r"[,.;:!?()\"]|\b(?:and|but|because|since|when)\b|$"
_PHRASE = rf"(?P<value>[^\s,.;:!?()\"][^,.;:!?()\"]{{0,60}}?)(?=\s*(?:{_ENDS}))"
_ROLE = (
    r"(?P<value>[a-z][a-z -]{1,40}?)"
    r"(?=\s+(?:at|for|in|with|and|but|since|because)\b|\s*[,.;:!?()]|$)"
)
# a liked thing may be a list ("action and sci-fi movies") but ends where a new clause starts
_LIKED = (
    r"(?P<value>[^\s,.;:!?()\"][^,.;:!?()\"]{0,60}?)(?=\s*(?:[,.;:!?()\"]|\band (?:I|we|you|it|"
    r"they|he|she|my|our|the|that|this|so|then)\b|\b(?:but|because|since|when|as|so|if)\b|$))"
)
# "my cat, Luna, sleeps" names the cat; "my girlfriend, Toby and I" lists two people
_APPOSITION = r"(?:,\s(?=[A-Z][\w'-]*(?: [A-Z][\w'-]*)?(?:[,.!?)]|$))| )"
_I = r"\b(?:I|i)"
_IM = rf"{_I}(?:'m| am)"
_WORK = rf"{_I}(?:'m| am)? (?:currently |now )?work(?:ing)?"
_PETS = (
    "dog|cat|puppy|pup|kitten|kitty|rabbit|bunny|hamster|guinea pig|parrot|bird|horse|"
    "pony|turtle|tortoise|fish|snake|lizard|ferret|gecko|chinchilla"
)
_PARTNERS = "husband|wife|partner|boyfriend|girlfriend|fianc[eé]e?|spouse"
_CHILDREN = "son|daughter|kid|baby|stepson|stepdaughter"
_FAMILY = (
    "mom|mum|mother|dad|father|brother|sister|grandma|grandmother|grandpa|grandfather|"
    "aunt|uncle|cousin|niece|nephew|stepmom|stepdad|stepbrother|stepsister"
)
_HEALTH_STATES = (
    "vegetarian|vegan|pescatarian|diabetic|lactose intolerant|gluten intolerant|celiac|coeliac"
)
_CONDITIONS = "asthma|diabetes|celiac disease|coeliac disease|epilepsy|migraines|adhd|dyslexia"


Pattern = re.Pattern[str]


def _rule(slot: str, verb: str, value: str, shape: str = "{value}") -> tuple[str, Pattern, str]:
    """A slot filled by `value` after `verb`; the verb is matched without case, while names
    and places must be capitalised as written."""
    return slot, re.compile(rf"(?i:{verb}){value}"), shape


_RULES: list[tuple[str, Pattern, str]] = [
    _rule("name", r"\bmy name is |\bmy name's |\bcall me ", _NAME),
    _rule("home", rf"{_I} (?:now |currently |still )?live in ", _PLACE),
    _rule("home", rf"{_IM} (?:now |currently )?living in ", _PLACE),
    _rule("home", r"\b(?:I|i|we)(?:'ve| have)? (?:just |recently |finally )?moved to ", _PLACE),
    _rule("origin", rf"{_IM} originally from |{_I} grew up in ", _PLACE),
    _rule("work", rf"{_WORK} as (?:an? |the )?", _ROLE),
    _rule("employer", rf"{_WORK} as an? [a-z -]{{1,40}}? (?:at|for) ", _PLACE),
    _rule("employer", rf"{_WORK} (?:at|for) ", _PLACE),
    _rule("employer", rf"{_I} (?:just )?(?:got|started) a (?:new )?job at ", _PLACE),
    _rule("education", rf"{_I} (?:graduated from|studied at) ", _PLACE),
    _rule("birthday", rf"\bmy birthday is(?: on)? |{_I} was born on ", "(?P<value>.+)", "{date}"),
    _rule(
        "date",
        r"\bmy (?P<what>anniversary|name day) is(?: on)? ",
        "(?P<value>.+)",
        "{what}: {date}",
    ),
    _rule(
        "pet", rf"\bmy (?P<what>{_PETS}){_APPOSITION}(?:named |called )?", _NAME, "{value} ({what})"
    ),
    _rule(
        "pet",
        rf"\b(?:I|i|we)(?: also)? (?:have|got|adopted) (?:an?|another|a new) (?P<what>{_PETS})"
        r",? (?:named|called) ",
        _NAME,
        "{value} ({what})",
    ),
    # "Oscar, my guinea pig." names him; "Thanks, Mel, my dog loves it" addresses Mel
    ("pet", re.compile(rf"{_NAME}, (?i:my (?P<what>{_PETS}))(?=[.,;!]|$)"), "{value} ({what})"),
    _rule("partner", rf"\bmy (?P<what>{_PARTNERS}){_APPOSITION}", _NAME, "{value} ({what})"),
    _rule("child", rf"\bmy (?P<what>{_CHILDREN}){_APPOSITION}", _NAME, "{value} ({what})"),
    _rule("family", rf"\bmy (?P<what>{_FAMILY}){_APPOSITION}", _NAME, "{value} ({what})"),
    _rule("health", rf"{_IM} allergic to ", _PHRASE, "allergic to {value}"),
    _rule("health", rf"{_IM} (?:an? )?(?P<value>{_HEALTH_STATES})\b", ""),
    _rule("health", rf"{_I} have (?P<value>{_CONDITIONS})\b", ""),
    _rule("likes", rf"{_I} (?:really |absolutely |just )?(?:love|adore|enjoy) ", _LIKED),
    _rule(
        "likes",
        r"\bmy favou?rite (?P<what>[a-z]+(?: [a-z]+)?) is ",
        _PHRASE,
        "{value} (favourite {what})",
    ),
    _rule("dislikes", rf"{_I} (?:really )?(?:hate|detest|dislike|can't stand) ", _LIKED),
]

# what a liked or disliked thing must not start with or contain: it points at something
# only the conversation shows ("I love that!", "I love how you...", "I love the colours in
# this one")
_DEICTIC = re.compile(
    r"(?i)^(?:it|that|this|these|those|you|your|yours|them|him|her|us|me|myself|how|what|"
    r"when|where|why|who|which|so|too|all|everything|everyone|everybody|being|hearing|"
    r"seeing|having|reading about|to hear|to see|doing|making|way|thought|idea|feeling|"
    r"the)\b|\b(?:this|that|these|those|it|your|you|yours|here|there|their|his|her|our|"
    r"not|no|never)\b"
)
_NOT_NAMES = frozenset(
    [
        "I",
        "And",
        "But",
        "The",
        "A",
        "An",
        "So",
        "Then",
        "My",
        "Our",
        "Your",
        "Is",
        "Was",
        "Who",
        "What",
        "When",
        "Where",
        "Why",
        "How",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Today",
        "Tomorrow",
        "Yesterday",
    ]
)


_FREE_TEXT = frozenset({"likes", "dislikes", "work", "health"})
_NAMED = frozenset(
    {"name", "home", "origin", "employer", "education", "pet", "partner", "child", "family"}
)


def sentences(text: str) -> list[str]:
    """The sentences of a text, trimmed, in order."""
    clean = unicodedata.normalize("NFC", text).replace("\u2019", "'")
    return [s.strip() for s in _SENTENCE_END.split(clean) if s and s.strip()]


def statements_about_self(text: str) -> Iterator[Found]:
    """Slot values the speaker states about themselves in `text`."""
    for sentence in sentences(text):
        if sentence.endswith("?") or len(sentence) > MAX_SENTENCE_CHARS:
            continue  # "do you live in Paris?"
        for slot, pattern, shape in _RULES:
            for match in pattern.finditer(sentence):
                value = _value(slot, match, shape)
                if value and _stated(sentence, match.start()):
                    yield Found(slot, value, sentence)
        yield from _contacts(sentence)


def _value(slot: str, match: re.Match[str], shape: str) -> str | None:
    """The value a match states, written as `shape` says, or None when it fails the
    slot's checks: a date that leads, a free phrase that points at nothing only the
    conversation shows, a name that is a name."""
    parts = {key: (text or "").strip() for key, text in match.groupdict().items()}
    value = parts["value"].strip(" .'\"")
    if "{date}" in shape:
        leading = _date_leads(value)
        if leading is None:
            return None
        parts["date"] = leading
    elif slot in _FREE_TEXT and shape.startswith(("{value}", "allergic")):
        value = re.sub(r"(?i)\s+(?:too|as well|also|so much|a lot|very much)$", "", value)
        if _DEICTIC.search(value) or not 0 < len(value.split()) <= MAX_VALUE_WORDS:
            return None
        if slot in {"likes", "dislikes"} and not _opens_clause(match):
            return None
        if slot != "work":
            value = re.sub(r"(?i)^(?:to|a|an)\b ?", "", value)
        if not value:
            return None
    elif slot in _NAMED:
        value = re.sub(r"'s?$", "", value)
        first = value.replace(",", " ").split()[0] if value.strip() else ""
        if not first or first in _NOT_NAMES:
            return None
    parts["value"] = value
    written = shape.format(**parts).strip()
    return written if 0 < len(written) <= MAX_VALUE_CHARS else None


_FILLER = frozenset(
    [
        "yes",
        "yeah",
        "yep",
        "oh",
        "wow",
        "well",
        "and",
        "also",
        "plus",
        "honestly",
        "but",
        "so",
        "really",
        "personally",
        "still",
        "though",
        "even",
        "just",
        "actually",
        "i",
    ]
)


def _opens_clause(match: re.Match[str]) -> bool:
    """The statement starts its clause ("Yeah, I love hiking"), rather than ending a
    relative one ("something I love", "a job I enjoy")."""
    before = _CLAUSE.split(match.string[max(0, match.start() - CLAUSE_LOOKBACK) : match.start()])[
        -1
    ]
    return all(word in _FILLER for word in re.findall(r"[a-z']+", before.lower()))


def _date_leads(value: str) -> str | None:
    """The date that comes first in what follows the verb ("my birthday is May 3"; not
    "my birthday is in two weeks, on May 3")."""
    for pattern in _DATES:
        match = pattern.match(value)
        if match:
            return _iso(match)
    return None


def _stated(sentence: str, start: int) -> bool:
    """The clause before a match neither negates nor imagines it."""
    before = sentence[max(0, start - CLAUSE_LOOKBACK) : start]
    clause = _CLAUSE.split(before)[-1] if before else ""
    return not (
        _NEGATION.search(clause) or _HYPOTHETICAL.search(clause) or _HYPOTHETICAL.search(before)
    )


def _contacts(sentence: str) -> Iterator[Found]:
    """Contact details the person gives as their own: not in a sentence about someone
    else ("her email is ...")."""
    if _OTHERS.search(sentence) or _NEGATION.search(sentence):
        return
    for email in emails_in(sentence):
        yield Found("email", email.lower(), sentence)
    for phone in phones_in(sentence):
        yield Found("phone", phone, sentence)
    if _URL_WORDS.search(sentence):
        for url in urls_in(sentence):
            yield Found("website", url, sentence)
