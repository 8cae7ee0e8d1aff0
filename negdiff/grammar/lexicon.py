"""The toy grammar's lexicon: nouns, verbs, determiners, adjectives and the POS tag of every word."""

from __future__ import annotations

from dataclasses import dataclass

POS_TAGS: tuple[str, ...] = (
    "DET", "NOUN", "PROPN", "VERB", "AUX", "ADP", "PRON", "SCONJ", "ADV", "PART", "PUNCT", "CCONJ", "ADJ",
)

SG, PL = "sg", "pl"
HUMAN, ANIMAL, THING = "human", "animal", "thing"


@dataclass(frozen=True)
class Noun:
    sg: str
    pl: str
    cls: str                      # human | animal | thing
    gender: str | None = None     # "m" / "f" for gendered humans
    irregular: bool = False
    sound: str | None = None      # animals: the one sound verb (base form)
    food: str | None = None       # animals: the one food (mass noun)
    color: str | None = None      # things with a fixed colour

    def form(self, num: str) -> str:
        return self.sg if num == SG else self.pl


@dataclass(frozen=True)
class Verb:
    s3: str        # present, 3rd person singular
    base: str      # present plural / bare form
    past: str
    pp: str        # past participle
    kind: str      # intr | tr | sent | sound | eat
    subj: str      # human | animate | any
    obj: str | None = None   # tr: animate | thing | any
    refl: bool = False
    wh: str = "no"           # sent: "no" (that-clauses), "both" (know), "only" (wonder)

    def finite(self, num: str, tense: str) -> str:
        if tense == "past":
            return self.past
        return self.s3 if num == SG else self.base


def make_human(sg, pl=None, gender=None, irregular=False):
    return Noun(sg, pl or sg + "s", HUMAN, gender, irregular)


HUMANS = (
    make_human("boy", gender="m"), make_human("man", "men", "m", True), make_human("king", gender="m"), make_human("father", gender="m"),
    make_human("girl", gender="f"), make_human("woman", "women", "f", True), make_human("queen", gender="f"), make_human("mother", gender="f"),
    make_human("teacher"), make_human("doctor"), make_human("student"), make_human("farmer"), make_human("pilot"), make_human("author"),
    make_human("senator"), make_human("guard"), make_human("customer"), make_human("manager"),
    make_human("child", "children", irregular=True), make_human("person", "people", irregular=True),
)
ANIMALS = (
    Noun("dog", "dogs", ANIMAL, sound="bark", food="meat"),
    Noun("cat", "cats", ANIMAL, sound="meow", food="fish"),
    Noun("cow", "cows", ANIMAL, sound="moo", food="grass"),
    Noun("horse", "horses", ANIMAL, sound="neigh", food="hay"),
    Noun("duck", "ducks", ANIMAL, sound="quack", food="bread"),
    Noun("mouse", "mice", ANIMAL, irregular=True, sound="squeak", food="cheese"),
    Noun("goose", "geese", ANIMAL, irregular=True, sound="honk", food="corn"),
)
THINGS = (
    Noun("book", "books", THING), Noun("car", "cars", THING), Noun("box", "boxes", THING),
    Noun("table", "tables", THING), Noun("cup", "cups", THING), Noun("ball", "balls", THING),
    Noun("house", "houses", THING), Noun("chair", "chairs", THING), Noun("picture", "pictures", THING),
    Noun("letter", "letters", THING),
    Noun("banana", "bananas", THING, color="yellow"), Noun("tomato", "tomatoes", THING, color="red"),
    Noun("leaf", "leaves", THING, irregular=True, color="green"), Noun("plum", "plums", THING, color="purple"),
    Noun("cloud", "clouds", THING, color="white"),
)
NOUNS = {HUMAN: HUMANS, ANIMAL: ANIMALS, THING: THINGS}
COLOR_THINGS = tuple(n for n in THINGS if n.color)
FOODS = tuple(a.food for a in ANIMALS)
COLORS = tuple(n.color for n in COLOR_THINGS)

NAMES = {"m": ("john", "tom", "david", "peter", "paul"), "f": ("mary", "sarah", "anna", "emma", "lucy")}
NAME_LIST = tuple((n, g) for g in ("m", "f") for n in NAMES[g])

INTRANSITIVE = (
    Verb("laughs", "laugh", "laughed", "laughed", "intr", HUMAN),
    Verb("smiles", "smile", "smiled", "smiled", "intr", HUMAN),
    Verb("dances", "dance", "danced", "danced", "intr", HUMAN),
    Verb("cries", "cry", "cried", "cried", "intr", HUMAN),
    Verb("waits", "wait", "waited", "waited", "intr", HUMAN),
    Verb("sleeps", "sleep", "slept", "slept", "intr", "animate"),
    Verb("runs", "run", "ran", "run", "intr", "animate"),
    Verb("swims", "swim", "swam", "swum", "intr", "animate"),
    Verb("jumps", "jump", "jumped", "jumped", "intr", "animate"),
    Verb("falls", "fall", "fell", "fallen", "intr", "animate"),
)
TRANSITIVE = (
    Verb("sees", "see", "saw", "seen", "tr", "animate", "any", refl=True),
    Verb("likes", "like", "liked", "liked", "tr", "animate", "any", refl=True),
    Verb("watches", "watch", "watched", "watched", "tr", "animate", "any", refl=True),
    Verb("hates", "hate", "hated", "hated", "tr", "animate", "any", refl=True),
    Verb("admires", "admire", "admired", "admired", "tr", HUMAN, "animate", refl=True),
    Verb("helps", "help", "helped", "helped", "tr", HUMAN, "animate", refl=True),
    Verb("visits", "visit", "visited", "visited", "tr", HUMAN, "animate"),
    Verb("chases", "chase", "chased", "chased", "tr", "animate", "animate"),
    Verb("follows", "follow", "followed", "followed", "tr", "animate", "animate"),
    Verb("finds", "find", "found", "found", "tr", "animate", "any"),
    Verb("carries", "carry", "carried", "carried", "tr", HUMAN, THING),
    Verb("buys", "buy", "bought", "bought", "tr", HUMAN, THING),
    Verb("writes", "write", "wrote", "written", "tr", HUMAN, THING),
    Verb("breaks", "break", "broke", "broken", "tr", HUMAN, THING),
    Verb("draws", "draw", "drew", "drawn", "tr", HUMAN, "any"),
)
SENTENTIAL = (
    Verb("thinks", "think", "thought", "thought", "sent", HUMAN),
    Verb("says", "say", "said", "said", "sent", HUMAN),
    Verb("believes", "believe", "believed", "believed", "sent", HUMAN),
    Verb("hopes", "hope", "hoped", "hoped", "sent", HUMAN),
    Verb("knows", "know", "knew", "known", "sent", HUMAN, wh="both"),
    Verb("wonders", "wonder", "wondered", "wondered", "sent", HUMAN, wh="only"),
)
SOUND = {
    v.base: v for v in (
        Verb("barks", "bark", "barked", "barked", "sound", ANIMAL),
        Verb("meows", "meow", "meowed", "meowed", "sound", ANIMAL),
        Verb("moos", "moo", "mooed", "mooed", "sound", ANIMAL),
        Verb("neighs", "neigh", "neighed", "neighed", "sound", ANIMAL),
        Verb("quacks", "quack", "quacked", "quacked", "sound", ANIMAL),
        Verb("squeaks", "squeak", "squeaked", "squeaked", "sound", ANIMAL),
        Verb("honks", "honk", "honked", "honked", "sound", ANIMAL),
    )
}
EAT = Verb("eats", "eat", "ate", "eaten", "eat", ANIMAL)
IRREGULAR_PP = tuple(v for v in INTRANSITIVE + TRANSITIVE if v.pp != v.past and v.pp != v.base)

ADJ_ANIMATE = ("happy", "sad", "tired", "old", "young", "big", "small")
ADJ_THING = ("old", "new", "big", "small", "nice", "heavy")
ADJ = {HUMAN: ADJ_ANIMATE, ANIMAL: ADJ_ANIMATE, THING: ADJ_THING}
PREPS = ("near", "behind", "beside")

SG_DETS = ("the",) * 10 + ("a",) * 3 + ("this", "that", "every")
PL_DETS = ("the",) * 10 + ("these", "those", "many", "few", "several", "some")
# number-specific determiners usable in determiner-noun agreement pairs: (singular, plural)
DET_SWAPS = (("this", "these"), ("that", "those"), ("every", "many"))

FUNCTION_WORD_TAGS = {}
for _w in ("the", "a", "an", "this", "that", "these", "those", "every", "many", "few", "several", "some", "no", "any"):
    FUNCTION_WORD_TAGS[_w] = "DET"
for _w in ("does", "do", "did", "is", "are", "was", "were", "has", "have", "been"):
    FUNCTION_WORD_TAGS[_w] = "AUX"


def fits_role(req: str, cls: str) -> bool:
    return req == "any" or req == cls or (req == "animate" and cls in (HUMAN, ANIMAL))


TR_FOR_SUBJ = {c: tuple(v for v in TRANSITIVE if fits_role(v.subj, c)) for c in (HUMAN, ANIMAL)}
TR_FOR_OBJ = {c: tuple(v for v in TRANSITIVE if fits_role(v.obj, c)) for c in (HUMAN, ANIMAL, THING)}
INTR_FOR = {c: tuple(v for v in INTRANSITIVE if fits_role(v.subj, c)) for c in (HUMAN, ANIMAL)}
REFL_FOR = {c: tuple(v for v in TR_FOR_SUBJ[c] if v.refl) for c in (HUMAN, ANIMAL)}


def lexicon() -> dict[str, str]:
    """Every word the grammar can produce, mapped to its POS tag."""
    lex: dict[str, str] = dict(FUNCTION_WORD_TAGS)
    for nouns in NOUNS.values():
        for n in nouns:
            lex[n.sg] = lex[n.pl] = "NOUN"
    for f in FOODS:
        lex[f] = "NOUN"
    for n, _ in NAME_LIST:
        lex[n] = "PROPN"
    for v in INTRANSITIVE + TRANSITIVE + SENTENTIAL + tuple(SOUND.values()) + (EAT,):
        for w in (v.s3, v.base, v.past, v.pp):
            lex[w] = "VERB"
    for w in ADJ_ANIMATE + ADJ_THING + COLORS:
        lex[w] = "ADJ"
    for w in PREPS:
        lex[w] = "ADP"
    for w in ("himself", "herself", "itself", "themselves", "who", "which", "what", "nobody"):
        lex[w] = "PRON"
    for w in ("often", "always", "never", "ever", "too", "so"):
        lex[w] = "ADV"
    lex["not"] = "PART"
    lex["and"] = "CCONJ"
    lex["."] = lex["?"] = "PUNCT"
    return lex
