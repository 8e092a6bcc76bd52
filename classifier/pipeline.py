"""One call at intake: what is it, where is it, who should handle it.

``Suggester.suggest`` takes the complaint text (and the address text and coordinates when the
caller gave them) and returns plain data: the top categories with probabilities (or an
abstention), the request type, the urgency tier with the line to transfer an emergency to, the
resolved place, and the top units with their reasons. Nothing here touches a database.
"""

from dataclasses import dataclass

from classifier import intent
from classifier.normalize import normalize

#: Texts per model call in a batch (see ``Suggester.suggest_many``).
CHUNK = 128


@dataclass
class CategoryInfo:
    name: str
    #: Water, power, gas or heating: an outage is urgent (24-hour clock).
    utility: bool = False


class Suggester:
    def __init__(self, bundle, *, gazetteer=None, grids=None, router=None, categories=None):
        self.bundle = bundle
        self.gazetteer = gazetteer
        self.grids = grids
        self.router = router
        #: {code: CategoryInfo} for names and the utility flag.
        self.categories = categories or {}

    def suggest(self, text, *, address=None, lng=None, lat=None, k=3):
        return self.suggest_many([text], addresses=[address], points=[(lng, lat)], k=k)[0]

    def suggest_many(self, texts, *, addresses=None, points=None, k=3):
        """Suggestions for a batch: the models run once over all texts (matrix products),
        the place and unit look-ups per text."""
        clean = [normalize(t) for t in texts]
        addresses = addresses or [None] * len(texts)
        points = points or [(None, None)] * len(texts)
        predictions, request_types, urgencies = [], [], []
        # Chunks: memory stays flat whatever the batch size.
        for start in range(0, len(clean), CHUNK):
            chunk = clean[start : start + CHUNK]
            categories = self.bundle.category.predict(chunk, k=k)
            if self.bundle.request_type is not None:
                request_types += self.bundle.request_type.predict(chunk)
            else:
                request_types += [intent.request_type_by_rules(t) for t in chunk]
            urgencies += intent.urgencies(
                chunk,
                utility_categories=[
                    not p.abstain and self._utility(p.top[0][0]) for p in categories
                ],
                model=getattr(self.bundle, "urgency", None),
            )
            predictions += categories
        results = []
        for text, prediction, request_type, urgency, address, (lng, lat) in zip(
            clean, predictions, request_types, urgencies, addresses, points, strict=True
        ):
            results.append(self._one(text, prediction, request_type, urgency, address, lng, lat, k))
        return results

    def _one(self, clean, prediction, request_type, urgency, address, lng, lat, k):
        top = [
            {"code": code, "name": self._name(code), "probability": round(p, 4)}
            for code, p in prediction.top
        ]
        best = None if prediction.abstain else prediction.top[0][0]
        place = self._place(clean, address, lng, lat)
        area_code = place.get("code") if place else None
        units = []
        if self.router is not None and best:
            units = [
                {"code": s.unit, "confidence": round(s.confidence, 4), "reason": s.reason}
                for s in self.router.suggest(best, area_code, {"request_type": request_type}, k=k)
            ]
        return {
            "category": {"top": top, "abstain": prediction.abstain},
            "request_type": request_type,
            "urgency": {
                "tier": urgency.tier,
                "transfer_to": urgency.transfer_to,
                "evidence": urgency.evidence,
            },
            "area": place,
            "units": units,
        }

    def _name(self, code):
        info = self.categories.get(code)
        if info is not None:
            return info.name
        return self.bundle.label_names.get(code, code)

    def _utility(self, code):
        return any(
            (info := self.categories.get(code[:n])) is not None and info.utility
            for n in range(len(code), 0, -2)
        )

    def _place(self, clean, address, lng, lat):
        """Coordinates first (a point in a grid is exact), then the address text, then the
        complaint text itself."""
        if self.grids is not None and lng is not None and lat is not None:
            hit = self.grids.lookup(lng, lat)
            if hit.code and not hit.near_boundary:
                code = hit.code
                return {
                    "code": code,
                    "level": "grid",
                    # Codes are hierarchical: the grid's ancestors are its prefixes.
                    "district": code[:6],
                    "street": code[:9],
                    "community": code[:12],
                    "grid": code,
                    "confidence": 1.0,
                    "matched": None,
                    "source": "coordinates",
                    "candidates": [],
                }
        if self.gazetteer is None:
            return None
        for source, candidate in (("address", address), ("content", clean)):
            if not candidate:
                continue
            resolution = self.gazetteer.resolve(normalize(candidate))
            if resolution.code or resolution.candidates:
                return {
                    "code": resolution.code,
                    "level": resolution.level,
                    **resolution.codes(),
                    "confidence": round(resolution.confidence, 3),
                    "matched": resolution.matched,
                    "source": source,
                    "candidates": [c.code for c in resolution.candidates],
                }
        return None
