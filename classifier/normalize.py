"""Text normalisation before features and before anything is logged.

Full-width letters, digits and punctuation become half-width, whitespace runs collapse,
traditional characters become simplified (OpenCC), and phone and ID numbers are replaced by
placeholders so that they neither reach the model nor a log line.
"""

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")

#: Mainland mobile numbers, landlines with area code, 18-digit resident ID numbers.
_ID_NUMBER = re.compile(r"(?<!\d)\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}[- ]?\d{7,8}(?!\d)")
_SPACES = re.compile(r"\s+")

PHONE_TOKEN = "<电话>"
ID_TOKEN = "<证件号>"


def to_halfwidth(text):
    """NFKC folds full-width ASCII (ＡＢＣ１２３，) to half-width; CJK is unaffected."""
    return unicodedata.normalize("NFKC", text)


def scrub(text):
    """Replace ID and phone numbers by placeholders (run after ``to_halfwidth``)."""
    text = _ID_NUMBER.sub(ID_TOKEN, text)
    text = _MOBILE.sub(PHONE_TOKEN, text)
    return _LANDLINE.sub(PHONE_TOKEN, text)


@lru_cache(maxsize=1024)
def normalize(text):
    """The canonical form of a complaint text: half-width, simplified, scrubbed, one space.

    Cached: at intake the same text passes through every model of the pipeline."""
    if not text:
        return ""
    text = to_halfwidth(text)
    text = _T2S.convert(text)
    text = scrub(text)
    return _SPACES.sub(" ", text).strip()
