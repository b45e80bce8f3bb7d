"""A vocabulary is encoded once per (model, vocabulary content, template); a cache hit is identical."""

import pytest
import torch

from interpbench.clipmodels import create_random
from interpbench.errors import BadSpecError
from interpbench.vocab import apply_template, encode_vocab, load_vocab, vocab_cache_key


class CountingEncoder:
    """A real open_clip text tower (random weights, seeded) + ReLU, as a sparse CLIP's text
    features, that records the texts it encodes."""

    def __init__(self):
        import open_clip

        torch.manual_seed(0)
        self.model = create_random("shapes-vit-tiny-sparse").eval()
        self.tokenizer = open_clip.get_tokenizer("shapes-vit-tiny-sparse")
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen.extend(texts)
        with torch.no_grad():
            return torch.relu(self.model.encode_text(self.tokenizer(texts)))


@pytest.fixture(scope="module")
def encoder():
    return CountingEncoder()


def test_cache_hit_returns_identical_values_without_encoding_again(encoder, tmp_path):
    words = load_vocab("shapes")
    key = {"model": "test-random-sparse", "what": "features"}
    encoder.seen.clear()
    first = encode_vocab(encoder, words, tmp_path, key, template="a photo of a {}.", batch_size=7)
    assert encoder.seen == [f"a photo of a {w}." for w in words]
    # Independent computation: the encoder on the templated words, in one batch.
    expected = encoder([f"a photo of a {w}." for w in words])
    assert first.shape == (48, 2048) and first.dtype == torch.float32
    assert torch.allclose(first, expected, atol=1e-5, rtol=1e-5)
    assert (first >= 0).all() and (first == 0).any()  # sparse CLIP features, stored as CSR
    encoder.seen.clear()
    again = encode_vocab(encoder, words, tmp_path, key, template="a photo of a {}.", batch_size=7)
    assert encoder.seen == [] and torch.equal(again, first)


def test_dense_storage_round_trips_exactly(encoder, tmp_path):
    words = ["red", "blue circle"]
    first = encode_vocab(encoder, words, tmp_path, {"model": "m"}, sparse=False)
    encoder.seen.clear()
    assert torch.equal(encode_vocab(encoder, words, tmp_path, {"model": "m"}, sparse=False), first)
    assert encoder.seen == []


def test_changed_content_template_or_model_is_encoded_afresh(encoder, tmp_path):
    encode_vocab(encoder, ["red", "blue"], tmp_path, {"model": "m"})
    for words, template, key in ((["red", "green"], "{}", {"model": "m"}),   # same size, other word
                                 (["red", "blue"], "a {} shape", {"model": "m"}),
                                 (["red", "blue"], "{}", {"model": "other"})):
        encoder.seen.clear()
        encode_vocab(encoder, words, tmp_path, key, template=template)
        assert encoder.seen == [apply_template(template, w) for w in words]


def test_an_edited_user_file_with_the_same_name_and_size_is_not_served_stale(encoder, tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("red\nblue\n", encoding="utf-8")
    before = encode_vocab(encoder, load_vocab(path), tmp_path / "cache", {"model": "m"})
    path.write_text("red\ngreen\n", encoding="utf-8")
    after = encode_vocab(encoder, load_vocab(path), tmp_path / "cache", {"model": "m"})
    assert torch.equal(after[0], before[0]) and not torch.equal(after[1], before[1])


def test_key_and_template_rules():
    assert apply_template("a photo of a {}.", "dog") == "a photo of a dog."
    assert apply_template("a {c} shape", "red") == "a red shape"
    assert apply_template("{c} {x}", "red") == "red {x}"  # other braces are left alone
    with pytest.raises(BadSpecError, match="has no slot for the word"):
        apply_template("a photo", "dog")
    key = vocab_cache_key({"model": "m"}, ["a", "b"], "{}")
    assert key["n_words"] == 2 and key["template"] == "{}" and len(key["vocab_sha256"]) == 64
    with pytest.raises(BadSpecError, match="non-empty dict identifying the model"):
        vocab_cache_key({}, ["a"], "{}")
    with pytest.raises(BadSpecError, match="non-empty list of strings"):
        encode_vocab(lambda t: None, [], "/nonexistent", {"model": "m"})
