"""Local lm-evaluation-harness tasks for the tests: a multiple-choice task in the tiny tokenizer's words,
and lm-eval's BLiMP template pointed at local JSON lines (task YAMLs loaded through ``include_path``)."""

from __future__ import annotations

import json
from pathlib import Path

# words of the tiny word-level tokenizer (tests/conftest.py), so nothing is <unk>
MC_DOCS = [
    {"question": "the cat sat on a", "choices": ["mat", "park", "trees"], "label": 0},
    {"question": "the dog ran to the", "choices": ["mat", "park"], "label": 1},
    {"question": "birds sang in tall", "choices": ["books", "trees", "cat"], "label": 1},
    {"question": "she reads books every", "choices": ["night", "dog", "park", "mat"], "label": 0},
    {"question": "stories make her", "choices": ["happy", "sang"], "label": 0},
    {"question": "the birds sang while the dog", "choices": ["ran", "sat", "reads"], "label": 0},
    {"question": "she reads because", "choices": ["stories make her happy", "the mat sat"], "label": 0},
    {"question": "a cat and a", "choices": ["dog", "tall", "every"], "label": 0},
]

MC_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_target: label
doc_to_choice: choices
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""

# lm-eval's tasks/blimp/_template_yaml, pointed at a local JSON-lines file
BLIMP_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}
output_type: multiple_choice
validation_split: train
doc_to_text: ""
doc_to_target: 0
doc_to_choice: "{{{{[sentence_good, sentence_bad]}}}}"
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def write_mc_task(folder: Path, task: str = "local_mc") -> Path:
    """``folder`` holding the multiple-choice task ``task`` (its YAML and JSON lines); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{task}.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in MC_DOCS))
    (folder / f"{task}.yaml").write_text(MC_YAML.format(task=task, data=data))
    return folder
