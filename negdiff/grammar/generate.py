"""Writing the built-in corpus: train/valid/test text, gold POS tags, the three suites and a manifest."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable, Iterable

from negdiff.grammar.grammar import MAX_WORDS, generate_split, normalise
from negdiff.grammar.lexicon import POS_TAGS, lexicon
from negdiff.grammar.pairs import PairGenerator, join_words
from negdiff.grammar.paradigms import blimp_specs, nonsyntactic_specs, tse_specs
from negdiff.io import write_json, write_text

FORMAT_VERSION = 1


def collect_pairs(gen: Callable, n: int, max_tries: int) -> list[tuple[str, str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    tries = 0
    while len(out) < n and tries < max_tries:
        tries += 1
        good, bad, case = gen()
        gs, bs = join_words(good), join_words(bad)
        if gs == bs or (gs, bs) in seen:
            continue
        seen.add((gs, bs))
        out.append((gs, bs, str(case)))
    return out


def jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows)


def seeded_rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"negdiff-corpus/{seed}/{stream}")


def build_suites(seed: int, pairs_per_paradigm: int):
    """All minimal-pair suites: {"blimp": {uid: rows}, "tse": {template: rows}, "nonsyntactic": {uid: rows}}."""
    suites: dict[str, dict[str, list[dict]]] = {"blimp": {}, "tse": {}, "nonsyntactic": {}}
    max_tries = 50 * pairs_per_paradigm + 200
    for suite, specs_fn in (("blimp", blimp_specs), ("nonsyntactic", nonsyntactic_specs)):
        for uid, term, field, gen in specs_fn(PairGenerator(seeded_rng(seed, suite))):
            rows = collect_pairs(gen, pairs_per_paradigm, max_tries)
            suites[suite][uid] = [
                {"sentence_good": g, "sentence_bad": b, "field": field, "linguistics_term": term, "UID": uid,
                 "simple_LM_method": True, "one_prefix_method": True, "two_prefix_method": False,
                 "lexically_identical": False, "pairID": str(i)}
                for i, (g, b, _) in enumerate(rows)
            ]
    for template, gen in tse_specs(PairGenerator(seeded_rng(seed, "tse"))):
        rows = collect_pairs(gen, pairs_per_paradigm, max_tries)
        suites["tse"][template] = [
            {"sentence_good": g, "sentence_bad": b, "template": template, "case": c, "pairID": str(i)}
            for i, (g, b, c) in enumerate(rows)
        ]
    return suites


def generate_corpus(out_dir, *, seed: int = 0, train_words: int = 3_000_000, valid_words: int = 100_000,
                    test_words: int = 100_000, pairs_per_paradigm: int = 200) -> dict:
    """Write the corpus, its POS tags and all minimal-pair suites into ``out_dir``; return the manifest.

    Every file is written atomically; ``manifest.json`` is written last (and holds no timings, so
    the same seed gives byte-identical files).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suites = build_suites(seed, pairs_per_paradigm)
    forbidden: set[str] = set()
    for rows_by_name in suites.values():
        for rows in rows_by_name.values():
            for r in rows:
                forbidden.add(normalise(r["sentence_good"]))
                forbidden.add(normalise(r["sentence_bad"]))

    splits = {}
    for split, n_words in (("train", train_words), ("valid", valid_words), ("test", test_words)):
        lines, tags, total, rejected = generate_split(seeded_rng(seed, split), n_words, forbidden)
        write_text(out / f"{split}.txt", "\n".join(lines) + "\n" if lines else "")
        write_text(out / f"{split}.pos", "\n".join(tags) + "\n" if tags else "")
        splits[split] = {"words": total, "sentences": len(lines), "requested_words": n_words,
                         "rejected_pair_collisions": rejected,
                         "mean_sentence_words": round(total / max(len(lines), 1), 3)}

    manifest_suites: dict[str, list[dict]] = {}
    for suite, rows_by_name in suites.items():
        d = out / suite
        d.mkdir(parents=True, exist_ok=True)
        for name, rows in rows_by_name.items():
            write_text(d / f"{name}.jsonl", jsonl(rows))
        for stale in d.glob("*.jsonl"):
            if stale.stem not in rows_by_name:
                stale.unlink()
        entries = []
        for name, rows in rows_by_name.items():
            if suite == "tse":
                cases: dict[str, int] = {}
                for r in rows:
                    cases[r["case"]] = cases.get(r["case"], 0) + 1
                entries.append({"template": name, "count": len(rows), "cases": dict(sorted(cases.items()))})
            else:
                entries.append({"UID": name, "count": len(rows), "linguistics_term": rows[0]["linguistics_term"] if rows else None,
                                "field": rows[0]["field"] if rows else None})
        manifest_suites[suite] = entries

    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "negdiff.corpus",
        "seed": seed,
        "pairs_per_paradigm": pairs_per_paradigm,
        "splits": splits,
        "word_counts": {k: v["words"] for k, v in splits.items()},
        "sentence_counts": {k: v["sentences"] for k, v in splits.items()},
        "paradigms": manifest_suites["blimp"],
        "templates": manifest_suites["tse"],
        "nonsyntactic": manifest_suites["nonsyntactic"],
        "n_pair_sentences_excluded": len(forbidden),
        "pos_tags": list(POS_TAGS),
        "lexicon_size": len(lexicon()),
        "max_sentence_words": MAX_WORDS,
    }
    write_json(out / "manifest.json", manifest)
    return manifest
