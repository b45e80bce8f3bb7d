"""Word lists for naming features, and a cache of their text-tower encodings.

Shipped vocabularies live in the repository's vocab/ folder (see docs/vocab.md):
`default` (WordNet first lemmas + common English words, normalised), `wordnet`,
`common-20k` and `shapes`. Any UTF-8 text file with one word per line works too.
"""

from interpbench.vocab.build import ALL_NAMES, build_all
from interpbench.vocab.encode import default_vocab_cache_dir, encode_vocab
from interpbench.vocab.normalise import clean_entry, is_word, normalise_word
from interpbench.vocab.store import Vocabulary, list_vocabs, load_vocab, vocab_dir
from interpbench.vocab.topwords import top_words, top_words_as_text

__all__ = [
    "ALL_NAMES", "Vocabulary", "build_all", "clean_entry", "default_vocab_cache_dir", "encode_vocab",
    "is_word", "list_vocabs", "load_vocab", "normalise_word", "top_words", "top_words_as_text", "vocab_dir",
]
