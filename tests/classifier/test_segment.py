"""``Segmenter.words`` is jieba's own accurate mode without the HMM, word for word."""

import random

import jieba
import pytest

from classifier import seeds
from classifier.normalize import normalize
from classifier.segment import Segmenter


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(seeds.user_words())


def _seed_texts():
    messages = seeds.read_jsonl(seeds.SEED_DIR / "corpus" / "messages.jsonl")
    return [f"{m.get('title', '')}。{m['text']}" for m in messages]


def _calls(n):
    from server.simulate import CallGenerator

    generator = CallGenerator(random.Random(19))
    calls = [generator.call() for _ in range(n)]
    return [c["content"] for c in calls] + [c["address"] for c in calls if c["address"]]


ODD = [
    "",
    " ",
    "abc123 XYZ",
    "a1b2c3",
    "A座3单元501室漏水",
    "G20高速K12+300处有事故",
    "电话<电话>,身份证<证件号>",
    "中 文\t空\r\n格",
    "100%的人都在用C++和C#",
    "……！！？？",
    "王小二在东城街道办事处咨询",
    "ｆｕｌｌ　ｗｉｄｔｈ",
    "𠮷野家",
]


def test_words_equal_jieba_on_the_seed_corpus_and_simulated_calls(segmenter):
    texts = _seed_texts() + _calls(1500) + ODD
    assert len(texts) > 3000
    jieba_words = segmenter.tokenizer.lcut
    raw_only = ["\ud800孤立"]  # a lone surrogate (normalize refuses it)
    different = [t for t in texts + raw_only if segmenter.words(t) != jieba_words(t, HMM=False)]
    assert different == []
    normalised = [normalize(t) for t in texts if t]
    assert [t for t in normalised if segmenter.words(t) != jieba_words(t, HMM=False)] == []


def test_words_equal_jieba_on_random_strings_of_dictionary_pieces(segmenter):
    """Random runs of words, prefixes, letters and symbols: ties and dead ends jieba meets."""
    rng = random.Random(5)
    pieces = sorted(w for w in segmenter.tokenizer.FREQ if len(w) <= 4)
    pieces = rng.sample(pieces, 3000) + list("aZ09 .-_%#&+，。!?") + segmenter.user_words[:200]
    texts = ["".join(rng.choices(pieces, k=rng.randint(1, 25))) for _ in range(2000)]
    jieba_words = segmenter.tokenizer.lcut
    assert [t for t in texts if segmenter.words(t) != jieba_words(t, HMM=False)] == []


def test_cut_keeps_its_filter():
    segmenter = Segmenter(["窨井盖"])
    assert segmenter.cut("路边的窨井盖，丢了！！") == ["路边", "窨井盖", "丢"]


def test_words_break_ties_as_jieba_does():
    """Equally probable routes (a word as frequent as the whole dictionary costs nothing): jieba
    takes the longer first word; so must ``words``."""
    rng = random.Random(3)
    letters = "甲乙丙丁"
    segmenter = Segmenter()
    tokenizer = segmenter._tokenizer = jieba.Tokenizer()
    for _ in range(20):
        frequencies = {}
        for _ in range(12):
            word = "".join(rng.choices(letters, k=rng.randint(1, 3)))
            frequencies[word] = rng.choice([1, 2, 8, 64])
        for word in list(frequencies):
            for end in range(1, len(word)):
                frequencies.setdefault(word[:end], 0)
        tokenizer.FREQ, tokenizer.total, tokenizer.initialized = frequencies, 64, True
        texts = ["".join(rng.choices(letters + "a1 ，", k=rng.randint(1, 12))) for _ in range(200)]
        assert [t for t in texts if segmenter.words(t) != tokenizer.lcut(t, HMM=False)] == []
