"""The built-in toy grammar: a seeded probabilistic grammar of a small fragment of English.

:func:`generate_corpus` (:mod:`negdiff.grammar.generate`) writes train/valid/test text (one sentence per line, lowercase, words and
punctuation separated by single spaces), gold Universal POS tags aligned word by word, and three
evaluation suites built from the *same* grammar:

* ``blimp/{UID}.jsonl``      BLiMP-style minimal pairs (syntax, morphology, syntax_semantics);
* ``tse/{template}.jsonl``   Marvin & Linzen (2018) targeted syntactic evaluation templates;
* ``nonsyntactic/{UID}.jsonl`` world-knowledge pairs: both sentences grammatical, the good one
  states a fact the grammar always encodes (animal sounds, animal food, object colours).

Design rules of the grammar (so every minimal pair is decidable from the training data):

* no bare plurals: every count noun phrase has a determiner (``the`` is number neutral; this/that/
  a/an/every are singular; these/those/many/few/several/some are plural; ``no`` is both);
  ``any`` (plural) appears only in a clause that licenses NPIs;
* NPIs (``ever``, ``any``) are licensed per clause: by ``not``/``never`` in the clause, by a subject
  ``no ...``/``nobody``, or by a matrix yes/no question; a licensor in a relative clause does not
  license the main clause;
* transitive verbs always have an object (or a filler-gap), intransitive verbs never do;
* reflexives are bound by the subject of their own clause: himself/herself (gendered humans and
  names; either one for the other singular humans), itself (singular animals), themselves (plural);
* each animal makes exactly one sound (dog barks, cat meows, ...) and eats exactly one food;
  certain objects have exactly one colour; these facts are never negated.

Modules: :mod:`~negdiff.grammar.lexicon` (the words and their tags), :mod:`~negdiff.grammar.grammar`
(sentences and text splits), :mod:`~negdiff.grammar.pairs` (minimal-pair generators),
:mod:`~negdiff.grammar.paradigms` (the suites' paradigms and templates) and
:mod:`~negdiff.grammar.generate` (writing it all). Reading the suites back is :mod:`negdiff.suites`'
job, aligning the gold tags to model tokens :mod:`negdiff.pos`'; neither imports this package, so a
config that never builds the toy corpus does not depend on its code.
"""

from negdiff.grammar.generate import FORMAT_VERSION, build_suites, generate_corpus
from negdiff.grammar.lexicon import POS_TAGS, lexicon

__all__ = ["FORMAT_VERSION", "POS_TAGS", "build_suites", "generate_corpus", "lexicon"]
