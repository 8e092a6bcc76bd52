"""Word segmentation with jieba, taught the city's place names and the category vocabulary.

Each ``Segmenter`` owns a private jieba tokenizer (the global one is shared by the whole
process), so different models can carry different user dictionaries. It pickles as its word
lists and rebuilds the tokenizer when loaded.
"""

import logging
import re
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
            for w in self.tokenizer.lcut(text, HMM=False)
            if w.strip() and w not in self.stop_words and not _NOISE.match(w)
        ]

    def __getstate__(self):
        return {"user_words": self.user_words, "stop_words": sorted(self.stop_words)}

    def __setstate__(self, state):
        self.user_words = state["user_words"]
        self.stop_words = frozenset(state["stop_words"])
        self._tokenizer = None
