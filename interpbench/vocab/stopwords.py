"""English function words that never make a useful feature name.

Written for this project (not taken from nltk's corpus, which would need a download).
Groups: articles and determiners, pronouns, auxiliary verbs, prepositions, conjunctions,
and function adverbs. Deliberately left OUT, because they are also concrete or visual
nouns or adjectives a feature could be about: can (tin can), will, may (the month), down
(feathers), inside, outside, past, number words (one, two, ...), colours, "top", "half".
Changing this list changes the `default` vocabulary: rebuild and commit vocab/ after.
"""

from __future__ import annotations

_GROUPS = {
    "determiners": """a an the this that these those some any each every either neither no nor
        another such what which whose whatever whichever own same other others more most
        less least much many few several all both enough""",
    "pronouns": """i me my mine myself we us our ours ourselves you your yours yourself
        yourselves he him his himself she her hers herself it its itself they them their
        theirs themselves who whom whoever whomever something anything nothing everything
        someone anyone everyone nobody somebody anybody everybody oneself""",
    "auxiliaries": """am is are was were be been being have has had having do does did doing
        shall should would could must might ought cannot""",
    "prepositions": """about above across after against along amid among amongst around as at
        before behind below beneath beside besides between beyond by despite during except
        for from in into like near of off on onto out over per since than through
        throughout till to toward towards under underneath unlike until up upon via with
        within without""",
    "conjunctions": """and but or so yet because although though while whereas if unless
        whether then also""",
    "adverbs": """not very too just only even still already again ever never always often
        sometimes here there where when why how now thus hence however therefore else quite
        rather almost perhaps maybe yes indeed""",
    "contraction_pieces": "ll re ve nt",  # what is left of "we'll", "they're" after splitting
}

STOP_WORDS: frozenset[str] = frozenset(w for text in _GROUPS.values() for w in text.split())
