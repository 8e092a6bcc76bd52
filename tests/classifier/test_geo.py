"""GridLocator: inside, outside, shared boundaries (→ no guess), seed-style grids, speed."""

import json
import math
import random
import time
from pathlib import Path

import pytest

from classifier import geo
from classifier.geo import GridLocator

ROOT = Path(__file__).resolve().parents[2]
SIZE = 0.0015  # like hotline/seed.py: about 150 m


def square(lng, lat, size=SIZE):
    """Axis-aligned square with its lower-left corner at (lng, lat)."""
    ring = [
        [round(lng, 6), round(lat, 6)],
        [round(lng + size, 6), round(lat, 6)],
        [round(lng + size, 6), round(lat + size, 6)],
        [round(lng, 6), round(lat + size, 6)],
        [round(lng, 6), round(lat, 6)],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture(scope="module")
def locator():
    # A and B share the edge lng = 119.0015; C stands alone; D is a MultiPolygon.
    return GridLocator(
        [
            ("A", square(119.0, 36.7)),
            ("B", square(119.0 + SIZE, 36.7)),
            ("C", square(119.1, 36.7)),
            (
                "D",
                {
                    "type": "MultiPolygon",
                    "coordinates": [
                        square(119.2, 36.7)["coordinates"],
                        square(119.21, 36.7)["coordinates"],
                    ],
                },
            ),
        ]
    )


def test_inside(locator):
    assert locator.locate(119.0005, 36.7007) == "A"
    assert locator.locate(119.0025, 36.7007) == "B"
    assert locator.locate(119.1007, 36.7007) == "C"
    assert locator.locate(119.2107, 36.7007) == "D"
    hit = locator.lookup(119.0005, 36.7007)
    assert hit.inside and not hit.near_boundary and hit.candidates == ("A",)


def test_outside(locator):
    assert locator.locate(118.5, 36.7) is None
    assert locator.locate(119.05, 36.7007) is None  # between B and C
    hit = locator.lookup(118.5, 36.7)
    assert not hit.inside and not hit.near_boundary and hit.candidates == ()


def test_on_a_shared_boundary_is_not_guessed(locator):
    edge = 119.0 + SIZE
    for dx in (0.0, 1e-6, -1e-6, 2e-5, -2e-5):
        hit = locator.lookup(edge + dx, 36.7007)
        assert hit.code is None, dx
        assert hit.near_boundary
        assert set(hit.candidates) == {"A", "B"}
    # Beyond the tolerance the point is settled again.
    assert locator.locate(edge - 1e-4, 36.7007) == "A"
    assert locator.locate(edge + 1e-4, 36.7007) == "B"


def test_near_an_outer_edge_keeps_the_code_and_flags_it(locator):
    hit = locator.lookup(119.1 + 1e-5, 36.7007)  # just inside C's west edge, no neighbour
    assert hit.code == "C"
    assert hit.near_boundary
    just_outside = locator.lookup(119.1 - 1e-5, 36.7007)
    assert just_outside.code is None
    assert just_outside.near_boundary and just_outside.candidates == ("C",)


def test_overlapping_grids_are_not_guessed():
    locator = GridLocator([("A", square(119.0, 36.7)), ("B", square(119.0005, 36.7))])
    hit = locator.lookup(119.001, 36.7007)
    assert hit.code is None
    assert set(hit.candidates) == {"A", "B"}


def test_tolerance_is_configurable():
    grids = [("A", square(119.0, 36.7)), ("B", square(119.0 + SIZE, 36.7))]
    strict = GridLocator(grids, tolerance=1e-7)
    assert strict.locate(119.0 + SIZE - 1e-6, 36.7007) == "A"
    loose = GridLocator(grids, tolerance=1e-3)
    assert loose.locate(119.0 + SIZE - 5e-4, 36.7007) is None


def seed_grids():
    """Grids of seed_data/areas.json, placed like hotline/seed.py places them."""
    with open(ROOT / "seed_data" / "areas.json", encoding="utf-8") as f:
        tree = json.load(f)
    grids = []
    for district in tree["districts"]:
        for street in district["streets"]:
            s_lng, s_lat = street["center"]
            communities = street["communities"]
            for index, community in enumerate(communities):
                angle = 2 * math.pi * index / max(len(communities), 1)
                c_lng = round(s_lng + 0.008 * math.cos(angle), 6)
                c_lat = round(s_lat + 0.008 * math.sin(angle), 6)
                for seq in range(1, community.get("grids", 3) + 1):
                    g_lng = c_lng + (seq - 2) * SIZE
                    half = SIZE / 2
                    grids.append(
                        (
                            f"{community['code']}{seq:03d}",
                            square(g_lng - half, c_lat - half),
                            (g_lng, c_lat),
                        )
                    )
    return grids


def test_seed_grid_centres_resolve_and_shared_edges_do_not():
    grids = seed_grids()
    locator = GridLocator((code, geometry) for code, geometry, _ in grids)
    assert len(locator) == len(grids)
    for code, _, (lng, lat) in grids:
        assert locator.locate(lng, lat) == code
    # Grids 1|2 and 2|3 of a community touch: the edge between them is nobody's.
    code, _, (lng, lat) = grids[1]
    assert code.endswith("002")
    assert locator.locate(lng - SIZE / 2, lat) is None
    assert locator.lookup(lng + SIZE / 2, lat).near_boundary


def test_lookup_is_fast_with_thousands_of_grids():
    grids = [
        (f"{i:03d}{j:03d}", square(119.0 + i * SIZE, 36.6 + j * SIZE))
        for i in range(80)
        for j in range(50)
    ]
    locator = GridLocator(grids)
    rng = random.Random(7)
    points = [(119.0 + rng.random() * 0.12, 36.6 + rng.random() * 0.075) for _ in range(5000)]
    for lng, lat in points[:100]:
        locator.lookup(lng, lat)
    start = time.perf_counter()
    found = sum(locator.locate(lng, lat) is not None for lng, lat in points)
    per_call_ms = (time.perf_counter() - start) * 1000 / len(points)
    assert found > 4000
    assert per_call_ms < 0.3, per_call_ms  # ≈ 0.04 ms measured; slack for loaded CI machines


def test_wgs84_to_gcj02_shifts_weifang_by_a_few_hundred_metres():
    # 潍坊市人民政府 (WGS-84 from a phone's GPS); the GCJ-02 point lies ~ 500 m to the east.
    lng, lat = geo.wgs84_to_gcj02(119.161755, 36.706774)
    assert 0.004 < lng - 119.161755 < 0.007
    assert 0.0 < lat - 36.706774 < 0.002


def test_gcj02_to_wgs84_inverts_the_offset_within_a_metre():
    for wgs in [(119.161755, 36.706774), (116.397128, 39.916527), (121.4737, 31.2304)]:
        gcj = geo.wgs84_to_gcj02(*wgs)
        back = geo.gcj02_to_wgs84(*gcj)
        assert abs(back[0] - wgs[0]) < 1e-5 and abs(back[1] - wgs[1]) < 1e-5
        assert gcj != back  # the offset is real: the inverse did something
