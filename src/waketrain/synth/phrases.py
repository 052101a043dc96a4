"""Texts to speak: the wake phrase and phrases that sound almost like it.

Confusable negatives share most of the phrase's sounds: a word dropped ("tars" alone), a
word cut short ("hey tar"), a new first sound ("hey stars"), one consonant swapped
("computer" -> "commuter"), an ending changed. A model that fires on these has learned
a few sounds, not the phrase.
"""

from __future__ import annotations

import re

ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "w",
          "st", "sh", "ch", "bl", "tr")  # fmt: skip
SIMILAR_CONSONANTS = {
    "p": "bm", "b": "pd", "t": "dk", "d": "tb", "k": "gt", "c": "gk", "g": "kd",
    "m": "nb", "n": "md", "f": "vs", "v": "fb", "s": "zf", "z": "s", "r": "lw", "l": "rn",
}  # fmt: skip
ENDINGS = ("ed", "ing")
VOWELS = set("aeiouy")

# Everyday speech that should never wake the assistant; spoken by the same voices.
GENERIC_SPEECH = (
    "what time is it", "turn off the lights", "good morning everyone", "can you hear me",
    "i will be back in ten minutes", "put the kettle on", "where did i leave my keys",
    "the weather looks nice today", "let's go for a walk", "dinner is ready",
    "please close the door", "how was your day", "call me later", "that sounds great",
    "i don't know", "we need more milk", "open the window", "the meeting starts at nine",
    "see you tomorrow", "thank you very much", "what are you doing", "it is raining again",
    "play some music", "set a timer for five minutes", "the train is late",
    "have you seen the cat", "my phone is charging", "one two three four five",
    "okay let's start", "never mind", "this is a test", "the coffee is too hot",
    "are we there yet", "read me the news", "it is very quiet here", "hello there",
    "hey there", "stop", "yes please", "no thanks", "maybe later", "excuse me",
)  # fmt: skip


def _words(phrase: str) -> list[str]:
    return re.findall(r"[a-z']+", phrase.lower())


def _onset(word: str) -> tuple[str, str]:
    """Split a word into its leading consonants and the rest."""
    for i, char in enumerate(word):
        if char in VOWELS:
            return word[:i], word[i:]
    return word, ""


def _word_variants(word: str) -> set[str]:
    out: set[str] = set()
    onset, rest = _onset(word)
    if rest:
        out.update(o + rest for o in ONSETS if o != onset)
        out.add(rest)  # first sound dropped
    for i, char in enumerate(word):
        for swap in SIMILAR_CONSONANTS.get(char, ""):
            if i > 0 or onset:
                out.add(word[:i] + swap + word[i + 1 :])
    if len(word) >= 4:
        for keep in (0.5, 0.7):
            out.add(word[: max(2, round(len(word) * keep))])  # cut short: "compu", "tar"
        out.add(word[len(word) // 2 :])  # only the end: "puter"
    # A new ending replaces the last sounds ("computer" -> "computing"); a plain extension
    # ("computers") would contain the whole phrase, which the model rightly fires on.
    base = word[:-2] if len(word) > 3 else word[:-1]
    out.update(base + ending for ending in ENDINGS)
    out.discard(word)
    return {v for v in out if len(v) >= 2 and not v.startswith(word)}


def confusable_phrases(phrase: str) -> list[str]:
    """Phrases one change away from `phrase`, sorted, without the phrase itself."""
    words = _words(phrase)
    found: set[str] = set()
    if len(words) > 1:
        for i in range(len(words)):
            found.add(" ".join(words[:i] + words[i + 1 :]))  # one word dropped
    for i, word in enumerate(words):
        for variant in _word_variants(word):
            found.add(" ".join([*words[:i], variant, *words[i + 1 :]]))
    found.discard(" ".join(words))
    return sorted(p for p in found if p.strip())
