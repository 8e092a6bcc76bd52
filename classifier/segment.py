"""Word segmentation with jieba, taught the city's place names and the category vocabulary.

Each ``Segmenter`` owns a private jieba tokenizer (the global one is shared by the whole
process), so different models can carry different user dictionaries. It pickles as its word
lists and rebuilds the tokenizer when loaded.

``Segmenter.words`` gives exactly jieba's accurate mode without the HMM
(``tokenizer.lcut(text, HMM=False)``) from jieba's own dictionary, in half the time: the word
graph and the best route are found in one pass, without jieba's per-character dictionaries,
generators and tuples (``tests/classifier/test_segment.py`` compares the two on the seed
corpus and thousands of simulated calls).
"""

import logging
import re
from math import log
from pathlib import Path

import jieba

jieba.setLogLevel(logging.WARNING)

STOP_WORDS_FILE = Path(__file__).resolve().parent / "data" / "stopwords.txt"
#: Tokens made only of punctuation, symbols or spaces carry no meaning for the model.
_NOISE = re.compile(r"^[\W_]+$")


def load_stop_words(path=STOP_WORDS_FILE):
    with open(path, encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


class Segmenter:
    def __init__(self, user_words=(), stop_words=None):
        #: Words jieba must keep whole: place names, landmarks, category terms.
        self.user_words = sorted({w for w in user_words if w and len(w) > 1})
        self.stop_words = load_stop_words() if stop_words is None else frozenset(stop_words)
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in self.user_words:
                # A high frequency makes jieba prefer the whole name over its parts.
                tokenizer.add_word(word, freq=max(2000, 500 * len(word)))
            self._tokenizer = tokenizer
        return self._tokenizer

    def cut(self, text):
        """Meaningful words of an already normalised text."""
        return [
            w
            for w in self.words(text)
            if w.strip() and w not in self.stop_words and not _NOISE.match(w)
        ]

    def words(self, text):
        """All the words of ``text``, exactly ``self.tokenizer.lcut(text, HMM=False)``."""
        tokenizer = self.tokenizer
        frequencies, log_total = tokenizer.FREQ, log(tokenizer.total)
        words = []
        for block in _HAN.split(text):
            if not block:
                continue
            if _HAN.match(block):
                words += _best_route(frequencies, log_total, block)
            else:
                for piece in _SKIP.split(block):
                    if _SKIP.match(piece):
                        words.append(piece)
                    else:
                        words.extend(piece)
        return words

    def __getstate__(self):
        return {"user_words": self.user_words, "stop_words": sorted(self.stop_words)}

    def __setstate__(self, state):
        self.user_words = state["user_words"]
        self.stop_words = frozenset(state["stop_words"])
        self._tokenizer = None


#: jieba's own patterns: runs of Chinese characters, letters, digits and a few symbols; the rest
#: is split at whitespace and into single characters.
_HAN, _SKIP = jieba.re_han_default, jieba.re_skip_default
#: Single letters and digits jieba glues back together (its ``re_eng``).
_ASCII_LETTERS_AND_DIGITS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)


def _best_route(frequencies, log_total, block):
    """jieba's ``__cut_DAG_NO_HMM`` of one block: the most probable split into dictionary words
    (``frequencies`` holds words with their counts and, at 0, the prefixes of words), with the
    same arithmetic and the same tie-break (the longer word), so the same words."""
    n = len(block)
    get = frequencies.get
    score = [0.0] * (n + 1)  # best log-probability of block[k:]
    end = [0] * (n + 1)  # the last character of the first word of that best split
    for k in range(n - 1, -1, -1):
        best, last = _NO_ROUTE, -1
        i = k
        count = get(block[k])
        while count is not None:  # block[k : i + 1] is a word or the prefix of one
            if count:
                value = log(count) - log_total + score[i + 1]
                if value >= best:
                    best, last = value, i
            i += 1
            if i == n:
                break
            count = get(block[k : i + 1])
        if last < 0:  # no word starts here: the character alone, counted once
            best, last = log(1) - log_total + score[k + 1], k
        score[k], end[k] = best, last
    words = []
    letters = ""
    k = 0
    while k < n:
        stop = end[k] + 1
        word = block[k:stop]
        if stop - k == 1 and word in _ASCII_LETTERS_AND_DIGITS:
            letters += word
        else:
            if letters:
                words.append(letters)
                letters = ""
            words.append(word)
        k = stop
    if letters:
        words.append(letters)
    return words


_NO_ROUTE = float("-inf")
