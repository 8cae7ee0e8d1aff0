"""A non-syntactic minimal-pair suite in real English, generated from small fact tables.

Each pair is two grammatical sentences that differ in exactly one content word: the true fact and a
false one. The swapped word has the same part of speech and the same number, so agreement never
changes: a model can only prefer the good sentence by knowing the fact. Tasks (``UID``):

- ``capital_of_country``: "The capital of France is Paris." / "... is Madrid."
- ``arithmetic_number_words``: "Two plus three equals five." / "... equals seven."
- ``day_after_day``: "The day after Monday is Tuesday." / "... is Friday."
- ``month_after_month``: "The month after March is April." / "... is October."
- ``antonym_of_adjective``: "The opposite of hot is cold." / "... is tall."
- ``colour_of_thing``: "Bananas are yellow." / "Bananas are purple."
- ``animal_sound``: "Dogs bark." / "Dogs moo."

``linguistics_term`` is the task family (world_knowledge, arithmetic, temporal_order, lexical_semantics).
Distractors are drawn with ``numpy.random.default_rng(SeedSequence([seed, task_index]))``, so the
suite is a pure function of ``(seed, distractors)``.
"""

from __future__ import annotations

import numpy as np

CAPITALS = {
    "France": "Paris", "Spain": "Madrid", "Italy": "Rome", "Germany": "Berlin", "Japan": "Tokyo",
    "Russia": "Moscow", "Egypt": "Cairo", "Greece": "Athens", "Portugal": "Lisbon", "Austria": "Vienna",
    "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen",
    "Ireland": "Dublin", "Poland": "Warsaw", "Hungary": "Budapest", "Belgium": "Brussels",
    "Kenya": "Nairobi", "Peru": "Lima", "Cuba": "Havana", "Thailand": "Bangkok", "China": "Beijing",
    "Canada": "Ottawa", "Australia": "Canberra", "Turkey": "Ankara", "Iran": "Tehran", "Chile": "Santiago",
    "Colombia": "Bogota", "Venezuela": "Caracas", "Ukraine": "Kyiv", "Romania": "Bucharest",
    "Bulgaria": "Sofia", "Serbia": "Belgrade", "Croatia": "Zagreb", "Iceland": "Reykjavik",
    "Indonesia": "Jakarta", "Vietnam": "Hanoi", "Philippines": "Manila",
}
# one-word answers only (no "Buenos Aires", "New Delhi"), so a pair differs in exactly one word

NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
ANTONYMS = {
    "hot": "cold", "big": "small", "tall": "short", "fast": "slow", "happy": "sad", "old": "young",
    "rich": "poor", "hard": "soft", "heavy": "light", "early": "late", "wet": "dry", "strong": "weak",
    "loud": "quiet", "thick": "thin", "deep": "shallow", "wide": "narrow", "clean": "dirty",
    "empty": "full", "cheap": "expensive", "true": "false", "open": "closed", "safe": "dangerous",
    "bright": "dark", "sweet": "sour",
}
COLOURS = {
    "Bananas": "yellow", "Lemons": "yellow", "Strawberries": "red", "Tomatoes": "red", "Cherries": "red",
    "Carrots": "orange", "Pumpkins": "orange", "Grapes": "purple", "Plums": "purple",
    "Leaves": "green", "Limes": "green", "Frogs": "green", "Crows": "black", "Ravens": "black",
    "Swans": "white", "Clouds": "white", "Snowflakes": "white", "Flamingos": "pink",
}
ANIMAL_SOUNDS = {
    "Dogs": "bark", "Cats": "meow", "Cows": "moo", "Lions": "roar", "Snakes": "hiss", "Bees": "buzz",
    "Owls": "hoot", "Wolves": "howl", "Ducks": "quack", "Pigs": "oink", "Horses": "neigh",
    "Sheep": "bleat", "Frogs": "croak", "Roosters": "crow",
}

TASKS = (
    ("capital_of_country", "world_knowledge"),
    ("arithmetic_number_words", "arithmetic"),
    ("day_after_day", "temporal_order"),
    ("month_after_month", "temporal_order"),
    ("antonym_of_adjective", "lexical_semantics"),
    ("colour_of_thing", "world_knowledge"),
    ("animal_sound", "world_knowledge"),
)


def _facts(uid: str) -> list[tuple[str, str, list[str]]]:
    """(sentence template with {}, correct word, candidate wrong words) per fact of one task."""
    if uid == "capital_of_country":
        caps = list(CAPITALS.values())
        return [(f"The capital of {c} is {{}}.", cap, [x for x in caps if x != cap]) for c, cap in CAPITALS.items()]
    if uid == "arithmetic_number_words":
        out = []
        for a in range(1, 11):
            for b in range(1, 11):
                if a + b <= 20:
                    right = a + b
                    wrong = [NUMBER_WORDS[k] for k in range(1, 21) if k != right]
                    out.append((f"{NUMBER_WORDS[a].capitalize()} plus {NUMBER_WORDS[b]} equals {{}}.", NUMBER_WORDS[right], wrong))
        return out
    if uid == "day_after_day":
        return [(f"The day after {d} is {{}}.", DAYS[(k + 1) % 7], [x for x in DAYS if x not in (d, DAYS[(k + 1) % 7])])
                for k, d in enumerate(DAYS)]
    if uid == "month_after_month":
        return [(f"The month after {m} is {{}}.", MONTHS[(k + 1) % 12],
                 [x for x in MONTHS if x not in (m, MONTHS[(k + 1) % 12])]) for k, m in enumerate(MONTHS)]
    if uid == "antonym_of_adjective":
        words = set(ANTONYMS) | set(ANTONYMS.values())
        return [(f"The opposite of {a} is {{}}.", b, sorted(words - {a, b})) for a, b in ANTONYMS.items()]
    if uid == "colour_of_thing":
        colours = sorted(set(COLOURS.values()) | {"blue", "brown", "grey"})
        return [(f"{t} are {{}}.", c, [x for x in colours if x != c]) for t, c in COLOURS.items()]
    if uid == "animal_sound":
        sounds = sorted(set(ANIMAL_SOUNDS.values()))
        return [(f"{a} {{}}.", s, [x for x in sounds if x != s]) for a, s in ANIMAL_SOUNDS.items()]
    raise KeyError(f"unknown fact task {uid!r}; known: {[t for t, _ in TASKS]}")


def english_fact_pairs(seed: int = 0, distractors: int = 3) -> list[dict]:
    """Every task's pairs: each fact with ``distractors`` seeded wrong words (fewer if it has fewer).

    Fields follow BLiMP: ``sentence_good``, ``sentence_bad``, ``UID``, ``linguistics_term``,
    ``field`` ("semantics"), ``pairID``, plus ``word_good`` / ``word_bad``."""
    if distractors < 1:
        raise ValueError(f"distractors must be >= 1, got {distractors}")
    rows: list[dict] = []
    for t, (uid, term) in enumerate(TASKS):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), t]))
        k = 0
        for template, right, wrong in _facts(uid):
            picks = rng.choice(len(wrong), size=min(distractors, len(wrong)), replace=False)
            for j in sorted(int(p) for p in picks):
                rows.append({
                    "sentence_good": template.format(right),
                    "sentence_bad": template.format(wrong[j]),
                    "word_good": right,
                    "word_bad": wrong[j],
                    "UID": uid,
                    "linguistics_term": term,
                    "field": "semantics",
                    "pairID": str(k),
                })
                k += 1
    return rows
