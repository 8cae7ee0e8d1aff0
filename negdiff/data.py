"""Text to token streams, and strided windows over them.

One code path for training, activation dumps and perplexity: a text is tokenised as one stream (its
lines joined by newlines, as in the file), and windows of ``window`` tokens advance by ``stride``. Each
token is *recorded* exactly once: the first window records all of its tokens, each later window only
the tokens that the previous one did not reach (so they keep ``window - stride`` tokens of context).

The window convention: every ``window`` a stage takes (``activations.window``, ``evaluation.window``) is
the number of positions the model sees, BOS included; :func:`stream_window` turns it into the stream
tokens per window (one fewer when a BOS is prepended), which is what :func:`iter_windows` walks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TokenStream:
    ids: np.ndarray  # int64 [N]
    offsets: np.ndarray  # int64 [N, 2], character offsets into the source text

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def head(self, n: int) -> "TokenStream":
        return TokenStream(self.ids[:n], self.offsets[:n])


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    keep_from: int  # positions keep_from..end-1 are recorded / scored


def read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    return path.read_text(encoding="utf-8")


def encode_text(
    tokenizer, text: str, *, chunk_lines: int = 2000, max_tokens: int | None = None, batch_chunks: int = 16
) -> TokenStream:
    """Tokenise ``text`` as one stream, in batched chunks of whole lines, without special tokens.

    Chunks end on a newline, so the result equals whole-text tokenisation for any tokenizer whose
    pre-tokenizer splits at newlines (byte-level BPE, SentencePiece with newline tokens). With
    ``max_tokens``, tokenisation stops once that many tokens exist and the stream is cut to it.
    """
    if chunk_lines < 1:
        raise ValueError("chunk_lines must be >= 1")
    lines = text.splitlines(keepends=True)
    chunks: list[str] = []
    starts: list[int] = []
    pos = 0
    for k in range(0, len(lines), chunk_lines):
        chunk = "".join(lines[k : k + chunk_lines])
        chunks.append(chunk)
        starts.append(pos)
        pos += len(chunk)
    ids: list[np.ndarray] = []
    offs: list[np.ndarray] = []
    total = 0
    for b in range(0, len(chunks), batch_chunks):
        enc = tokenizer(chunks[b : b + batch_chunks], add_special_tokens=False, return_offsets_mapping=True)
        for x, o, s in zip(enc["input_ids"], enc["offset_mapping"], starts[b : b + batch_chunks]):
            ids.append(np.asarray(x, dtype=np.int64))
            offs.append(np.asarray(o, dtype=np.int64).reshape(-1, 2) + s)
            total += len(x)
        if max_tokens is not None and total >= max_tokens:
            break
    if not ids:
        return TokenStream(np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
    stream = TokenStream(np.concatenate(ids), np.concatenate(offs))
    return stream.head(max_tokens) if max_tokens is not None else stream


def stream_window(window: int, bos: bool) -> int:
    """Stream tokens per window of ``window`` model positions: ``window - 1`` when a BOS token is
    prepended to every window (``bos``), else ``window``. Not checked here: the caller says what is too small."""
    return int(window) - (1 if bos else 0)


def iter_windows(n_tokens: int, window: int, stride: int) -> list[Window]:
    """Strided windows covering ``n_tokens``; every token is recorded by exactly one window."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not 1 <= stride <= window:
        raise ValueError(f"stride must be in [1, window={window}], got {stride}")
    out: list[Window] = []
    covered = 0
    start = 0
    while covered < n_tokens:
        end = min(start + window, n_tokens)
        out.append(Window(start, end, covered))
        covered = end
        start += stride
    return out


_TITLE = re.compile(r"^ = [^=].* = $")


def article_starts(lines: list[str]) -> list[int]:
    """Indices of WikiText article title lines (`` = Title = ``; section headings have ``= =``).

    Text before the first title, if any, belongs to the first article."""
    starts = [k for k, line in enumerate(lines) if _TITLE.match(line.rstrip("\n"))]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    return starts


def article_slice(text: str, lo: float, hi: float) -> tuple[str, dict]:
    """The articles ``[floor(lo * n), floor(hi * n))`` of a WikiText-style text, and a record of the cut.

    ``[0, 0.5]`` and ``[0.5, 1]`` are complementary halves: every article lands in exactly one."""
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"article fractions must satisfy 0 <= from < to <= 1, got [{lo}, {hi}]")
    lines = text.splitlines(keepends=True)
    if not lines:
        raise ValueError("cannot split an empty text into articles")
    starts = article_starts(lines)
    n = len(starts)
    a, b = int(lo * n), int(hi * n)
    if b <= a:
        raise ValueError(f"articles [{lo}, {hi}] of {n} select none")
    ends = starts[1:] + [len(lines)]
    chunk = lines[starts[a] : ends[b - 1]]
    record = {
        "articles_total": n,
        "articles": [a, b],
        "first_title": chunk[0].strip(),
        "last_title": lines[starts[b - 1]].strip(),
        "lines": len(chunk),
    }
    return "".join(chunk), record


def _local_source(data: dict, split: str) -> tuple[Path, list | None]:
    where = data["local"].get(split)
    if not where:
        raise ValueError(f"config key data.local.{split}: no file or directory given for the {split} split")
    if isinstance(where, dict):
        return Path(where["path"]), list(where["articles"])
    return Path(where), None


def local_source_path(data: dict, split: str) -> str:
    """The file or directory a ``data.source: local`` split reads (for the Snakefile's inputs)."""
    return str(_local_source(data, split)[0])


def load_split(data: dict, split: str) -> tuple[str, dict]:
    """:func:`load_split_text` plus a record of where the text came from (source, sha256, articles)."""
    import hashlib

    text = load_split_text(data, split)
    record: dict = {"split": split, "source": data["source"]}
    if data["source"] == "local":
        path, articles = _local_source(data, split)
        record["path"] = str(path)
        if path.is_file():
            record["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        if articles is not None:
            text, cut = article_slice(text, *articles)
            record.update(cut)
    elif data["source"] == "hf":
        record.update(dataset=f"{data['hf']['path']}/{data['hf']['name']}", hf_split=data["hf"]["splits"][split])
    record.update(characters=len(text), lines=text.count("\n"))
    return text, record


def load_split_text(data: dict, split: str) -> str:
    """The raw text of one split (train / valid / test) from a ``data`` config section.

    A ``local`` split may be ``{path, articles: [from, to]}``: the whole file here, and only those
    articles in :func:`load_split`. ``source: hf`` loads a Hugging Face dataset through ``datasets`` (WikiText-2 raw by default) and
    joins its ``text`` field; ``source: local`` reads a file, or every ``*.txt`` file of a directory in
    name order. Offline, a missing dataset raises an error that says how to give a local copy.
    """
    source = data["source"]
    if source == "local":
        path, _ = _local_source(data, split)
        if path.is_dir():
            files = sorted(path.glob("*.txt"))
            if not files:
                raise FileNotFoundError(f"data.local.{split}: directory {path} holds no *.txt files")
            return "".join(read_text(f) for f in files)
        return read_text(path)
    if source == "hf":
        hf = data["hf"]
        hf_split = hf["splits"][split]
        try:
            import datasets
        except ImportError:
            raise ImportError("data.source: hf needs the `datasets` package (pip install datasets)") from None
        try:
            ds = datasets.load_dataset(hf["path"], hf["name"], split=hf_split)
        except Exception as err:  # offline, unknown dataset, ...
            raise RuntimeError(
                f"could not load dataset {hf['path']}/{hf['name']} split {hf_split!r} ({type(err).__name__}: {err}). "
                f"Offline, give a local copy instead: data.source: local and data.local.{split}: PATH "
                "(a text file or a directory of *.txt files), or pre-populate the Hugging Face cache "
                "and set HF_DATASETS_OFFLINE=1"
            ) from None
        if "text" not in ds.column_names:
            raise ValueError(f"dataset {hf['path']}/{hf['name']} has no 'text' column: {ds.column_names}")
        return "".join(line if line.endswith("\n") else line + "\n" for line in ds["text"])
    raise ValueError(f"config key data.source: {source!r} has no text to load here; expected 'hf' or 'local'")
