"""Word lists for naming features, and the cache key of their text-tower encodings.

Shipped vocabularies live in the repository's vocab/ folder (see docs/vocab.md):
`default` (WordNet first lemmas + common English words, normalised), `wordnet`,
`common-20k` and `shapes`. Any UTF-8 text file with one word per line works too.
Naming features from the encodings is `interpbench.metrics.labels.vocabulary_labels`.
"""

from interpbench.vocab.build import ALL_NAMES, build_all
from interpbench.vocab.encode import apply_template, encode_vocab, vocab_cache_key
from interpbench.vocab.normalise import clean_entry, is_word, normalise_word
from interpbench.vocab.store import Vocabulary, list_vocabs, load_vocab, vocab_dir

__all__ = [
    "ALL_NAMES", "Vocabulary", "apply_template", "build_all", "clean_entry", "encode_vocab", "is_word",
    "list_vocabs", "load_vocab", "normalise_word", "vocab_cache_key", "vocab_dir",
]
