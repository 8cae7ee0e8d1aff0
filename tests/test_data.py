import numpy as np
import pytest

from negdiff.data import encode_text, iter_windows


@pytest.mark.parametrize("n,window,stride", [(0, 4, 2), (1, 4, 2), (10, 4, 4), (10, 4, 2), (11, 4, 3), (100, 16, 1)])
def test_windows_record_each_token_once(n, window, stride):
    wins = iter_windows(n, window, stride)
    recorded = np.concatenate([np.arange(w.keep_from, w.end) for w in wins]) if wins else np.zeros(0, int)
    np.testing.assert_array_equal(recorded, np.arange(n))
    for w in wins:
        assert 0 <= w.start <= w.keep_from < w.end <= n
        assert w.end - w.start <= window
    # context: every recorded token after the first window sees window - stride earlier tokens (or all)
    for w in wins[1:]:
        assert w.keep_from - w.start == min(window - stride, w.keep_from)


def test_windows_reject_bad_settings():
    with pytest.raises(ValueError, match="stride"):
        iter_windows(10, 4, 0)
    with pytest.raises(ValueError, match="stride"):
        iter_windows(10, 4, 5)
    with pytest.raises(ValueError, match="window"):
        iter_windows(10, 0, 1)


def test_encode_text_chunks_match_whole_text():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import PreTrainedTokenizerFast

    text = "".join(f"the dog {i % 7} near the cats barks .\n" for i in range(50))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    whole = fast(text, add_special_tokens=False, return_offsets_mapping=True)
    for chunk_lines in (1, 7, 1000):
        s = encode_text(fast, text, chunk_lines=chunk_lines)
        np.testing.assert_array_equal(s.ids, whole["input_ids"])
        np.testing.assert_array_equal(s.offsets, np.asarray(whole["offset_mapping"]))
    assert s.ids.dtype == np.int64 and s.offsets.shape == (len(s.ids), 2)


def test_encode_text_max_tokens_is_a_prefix():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = "".join(f"a cat {i % 5} sees the dogs .\n" for i in range(300))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=280, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    full = encode_text(fast, text, chunk_lines=10, batch_chunks=2)
    part = encode_text(fast, text, chunk_lines=10, batch_chunks=2, max_tokens=101)
    assert len(part) == 101
    np.testing.assert_array_equal(part.ids, full.ids[:101])
    np.testing.assert_array_equal(part.offsets, full.offsets[:101])
