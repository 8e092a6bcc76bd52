"""The demo history's storylines: what the city's early warnings and hot issues are about.

``server.history`` fills 90 days with calls drawn at random from the seed corpus; nothing in
that makes a surge, a sudden event or a matter forty people call about. These are written in
(``plan``; the texts are ``seed_data/storylines.json``), deterministic (a ``random.Random``
seeded with the history's seed and the story's name), placed at real addresses of the demo
city (``seed_data/areas.json`` and the roads of ``calls.json``), and received and handled
like every other call:

1. **A surge (诉求激增)**: one street of 奎文区 or 潍城区 whose old mains give it one to three
   water complaints on every working-day morning has a main burst on the last working day
   at least three days before the end: about five times its usual morning's calls, from
   several communities, between 07:30 and 10:40.
2. **A sudden event (突发事件)**: the evening before the last day, a power cut at one
   community: seven calls within about forty minutes.
3. **Repeated matters (热点问题)**: a concrete mixing plant working at night beside a named
   estate (weeks of calls, more lately, a few callers again and again); parking spaces
   sold bundled with the flats of a new estate; the residents' medical insurance payment
   period, asked about all over the city.
4. **推诿扯皮 and 弄虚作假 (监察问责)**, in the calendar month before the history's last
   day (the month the 监察问责 page opens on): three broken manhole covers on pavements of
   奎文区 that 城管局, then 住建局, send back within minutes of getting them, until the
   hotline designates 城管局 (``bounced``); four rubbish complaints at 梨园街道 that the street
   reports solved while every requester says on the callback that nothing was done
   (``claimed_solved``). These calls carry a ``story`` the history follows
   (``server.history``) instead of drawing their handling at random; ``accountability()``
   plans them apart from ``plan()`` so the other stories' calls keep their draws.

Every story only keeps the calls that fall inside the history (a short history has fewer
or none of them); the random calls of the history are not changed by them.
"""

import datetime as dt
import json
import random

from server.simulate import SEED_DIR

with open(SEED_DIR / "storylines.json", encoding="utf-8") as _f:
    _TEXTS = json.load(_f)
#: (title, content) of the street's usual water complaints; {addr} is the caller's address.
USUAL_WATER = [tuple(t) for t in _TEXTS["usual_water"]]
#: The burst main: (category, title, content); {addr}, {road}, {road2}, {community}.
SURGE_WATER = [tuple(t) for t in _TEXTS["surge_water"]]
#: The power cut: (title, content); {addr}.
SUDDEN_POWER = [tuple(t) for t in _TEXTS["sudden_power"]]
#: The mixing plant's night work beside an estate: (category, title, content); {addr}.
MIXING_PLANT = [tuple(t) for t in _TEXTS["mixing_plant"]]
#: Parking spaces sold bundled with the flats of a new estate: (title, content); {addr}.
BUNDLED_PARKING = [tuple(t) for t in _TEXTS["bundled_parking"]]
#: The residents' medical insurance (居民医保) payment period: (channel, title, content).
MEDICAL_INSURANCE = [tuple(t) for t in _TEXTS["medical_insurance"]]
#: The mixing plant's estate and the bundling estate: (street code, community code, name).
#: Manhole covers nobody owns: (title, content); {addr}. The returning units' notes by code.
BOUNCED_MANHOLE = [tuple(t) for t in _TEXTS["bounced_manhole"]]
BOUNCED_NOTES = _TEXTS["bounced_notes"]
#: Rubbish the street reports cleared: (title, content); {addr}; its reply and the callbacks.
CLAIMED_SOLVED = [tuple(t) for t in _TEXTS["claimed_solved"]]
CLAIMED_SOLVED_REPLY = _TEXTS["claimed_solved_reply"]
CLAIMED_SOLVED_COMMENT = _TEXTS["claimed_solved_comment"]
#: The units of the accountability stories: the two that pass the covers back and forth
#: (the first is designated in the end), and the street that reports rubbish cleared.
BOUNCING_UNITS = ("U-CGJ", "U-ZJJ")
CLAIMING_STREET = "370705003"  # 梨园街道 (U-S-370705003)
PLANT_ESTATE = ("370704003", "370704003020", "凤凰嘉苑")
PARKING_ESTATE = ("370705002", "370705002018", "锦绣华庭")


class Planner:
    """The storylines' calls for one history: ``plan()`` → [(moment (UTC), body)]."""

    def __init__(self, generator, *, seed, tz, first, last, workday):
        self.generator = generator
        self.seed = seed
        self.tz = tz
        self.first, self.last = first, last
        self.workday = workday
        self.places = {c["code"]: (d, s, c) for d, s, c in generator.places}
        self.streets = {}
        for district, street, community in generator.places:
            self.streets.setdefault(street["code"], (district, street, []))[2].append(community)

    def rng(self, story):
        return random.Random(f"{self.seed}:story:{story}")

    def moment(self, day, hour, minute=0, second=0):
        local = dt.datetime.combine(day, dt.time(hour, minute, second), self.tz)
        return local.astimezone(dt.UTC)

    def inside(self, day):
        return self.first <= day <= self.last

    def plan(self):
        calls = []
        calls += self.surge()
        calls += self.sudden()
        calls += self.mixing_plant()
        calls += self.bundled_parking()
        calls += self.medical_insurance()
        return sorted(calls, key=lambda c: c[0])

    def accountability(self):
        """The 监察问责 stories' calls (story 4), apart from ``plan()``'s."""
        return sorted(self.bounced() + self.claimed_solved(), key=lambda c: c[0])

    # -- bodies ------------------------------------------------------------------------------

    def _address(self, rng, community_code, spot=None):
        """(address text, grid code) at ``community_code``."""
        district, street, community = self.places[community_code]
        if spot is None:
            road = rng.choice(self.generator.roads.get(district["code"]) or ["中心街"])
            spot = f"{road}{rng.randint(1, 300)}号"
        grid = f"{community['code']}{rng.randint(1, 3):03d}"
        return f"{district['name']}{street['name']}{community['name']}{spot}", grid

    def _body(self, rng, *, category, title, content, address, area, phone, channel="phone",
              request_type="complaint"):  # fmt: skip
        body = {
            "channel": channel,
            "request_type": request_type,
            "urgency": "normal",
            "category": category,
            "title": title,
            "content": content,
            "address": address,
            "area": area,
            "requester_name": rng.choice(self.generator.surnames) + rng.choice(["先生", "女士"]),
            "requester_phone": phone or self._phone(rng),
        }
        return body

    @staticmethod
    def _phone(rng):
        return "1" + rng.choice("3456789") + "".join(rng.choices("0123456789", k=9))

    # -- 1. the surge ------------------------------------------------------------------------

    def surge_street(self):
        """The street: one of 奎文区's or 潍城区's with four communities or more."""
        rng = self.rng("surge-street")
        candidates = sorted(
            code
            for code, (district, _, communities) in self.streets.items()
            if district["code"] in ("370705", "370702") and len(communities) >= 4
        )
        return rng.choice(candidates)

    def surge_day(self):
        """The last working day at least three days before the end."""
        day = self.last - dt.timedelta(days=3)
        while not self.workday(day):
            day -= dt.timedelta(days=1)
        return day

    def surge(self):
        rng = self.rng("surge")
        district, street, communities = self.streets[self.surge_street()]
        burst = self.surge_day()
        calls = []
        # The usual: one to three water complaints on a working-day morning (08:00–11:00).
        day = self.first
        while day < burst:
            if self.workday(day):
                for _ in range(rng.choice((1, 2, 2, 3))):
                    community = rng.choice(communities)
                    address, grid = self._address(rng, community["code"])
                    title, content = rng.choice(USUAL_WATER)
                    at = self.moment(day, rng.randint(8, 10), rng.randrange(60), rng.randrange(60))
                    calls.append(
                        (at, self._body(rng, category=rng.choice(("010202", "010203", "010205")),
                                        title=title, content=content.format(addr=address),
                                        address=address, area=grid, phone=None))
                    )  # fmt: skip
            day += dt.timedelta(days=1)
        if not self.inside(burst):
            return [c for c in calls if self.inside(c[0].astimezone(self.tz).date())]
        # The burst main: ten calls from 07:30 to 10:40, community after community.
        roads = self.generator.roads.get(district["code"]) or ["中心街"]
        road, road2 = rng.sample(roads, 2)
        start = self.moment(burst, 7, 30)
        offsets = sorted(rng.sample(range(0, 190), len(SURGE_WATER)))
        order = list(SURGE_WATER)
        rng.shuffle(order)
        for i, (offset, (category, title, content)) in enumerate(zip(offsets, order, strict=True)):
            community = communities[i % len(communities)]
            address, grid = self._address(rng, community["code"])
            text = content.format(addr=address, road=road, road2=road2, community=community["name"])
            at = start + dt.timedelta(minutes=offset, seconds=rng.randrange(60))
            calls.append(
                (at, self._body(rng, category=category, title=title, content=text,
                                address=address, area=grid, phone=None))
            )  # fmt: skip
        return calls

    # -- 2. the sudden event -----------------------------------------------------------------

    def sudden_community(self):
        rng = self.rng("sudden-community")
        candidates = sorted(
            c["code"]
            for d, _, c in self.generator.places
            if d["code"] in ("370705", "370702", "370704") and c["name"].endswith("社区")
        )
        return rng.choice(candidates)

    def sudden(self):
        day = self.last - dt.timedelta(days=1)
        if not self.inside(day):
            return []
        rng = self.rng("sudden")
        code = self.sudden_community()
        start = self.moment(day, 19, 4)
        offsets = sorted(rng.sample(range(0, 39), len(SUDDEN_POWER)))
        calls = []
        for offset, (title, content) in zip(offsets, SUDDEN_POWER, strict=True):
            address, grid = self._address(rng, code)
            at = start + dt.timedelta(minutes=offset, seconds=rng.randrange(60))
            calls.append(
                (at, self._body(rng, category="010301", title=title,
                                content=content.format(addr=address), address=address,
                                area=grid, phone=None))
            )  # fmt: skip
        return calls

    # -- 3. repeated matters -----------------------------------------------------------------

    def _days(self, rng, weeks, count, *, recent_weight=2.0):
        """``count`` days within the last ``weeks`` weeks before the end, more of them lately."""
        span = weeks * 7
        days = []
        for _ in range(count):
            back = int(span * rng.random() ** recent_weight)
            days.append(self.last - dt.timedelta(days=back))
        return sorted(days)

    @staticmethod
    def _callers(rng, count, repeaters):
        """``count`` phone numbers of which ``repeaters`` callers call again and again."""
        regulars = [Planner._phone(rng) for _ in range(repeaters)]
        return [
            rng.choice(regulars) if regulars and rng.random() < 0.35 else Planner._phone(rng)
            for _ in range(count)
        ]

    def mixing_plant(self):
        rng = self.rng("mixing-plant")
        _, community, estate = PLANT_ESTATE
        count = 24
        days = self._days(rng, 6, count)
        phones = self._callers(rng, count, 3)
        calls = []
        for day, phone in zip(days, phones, strict=True):
            if not self.inside(day):
                continue
            category, title, content = rng.choice(MIXING_PLANT)
            building = f"{estate}{rng.randint(1, 18)}号楼"
            address, grid = self._address(rng, community, spot=building)
            # At night (the noise is now), or the next morning (about last night).
            if rng.random() < 0.7:
                at = self.moment(day, rng.choice((21, 22, 23)), rng.randrange(60))
            else:
                at = self.moment(day, rng.randint(7, 10), rng.randrange(60))
            calls.append(
                (at, self._body(rng, category=category, title=title,
                                content=content.format(addr=f"{estate}小区"), address=address,
                                area=grid, phone=phone))
            )  # fmt: skip
        return [c for c in calls if c[0] <= self.moment(self.last, 23, 59)]

    def bundled_parking(self):
        rng = self.rng("bundled-parking")
        _, community, estate = PARKING_ESTATE
        count = 14
        days = self._days(rng, 4, count, recent_weight=1.3)
        phones = self._callers(rng, count, 2)
        calls = []
        for day, phone in zip(days, phones, strict=True):
            if not self.inside(day) or (not self.workday(day) and rng.random() < 0.5):
                continue
            title, content = rng.choice(BUNDLED_PARKING)
            address, grid = self._address(rng, community, spot=f"{estate}售楼处")
            at = self.moment(day, rng.randint(9, 17), rng.randrange(60))
            channel = rng.choice(("phone", "phone", "phone", "web", "wechat"))
            calls.append(
                (at, self._body(rng, category="060203", title=title,
                                content=content.format(addr=f"{estate}项目"), address=address,
                                area=grid, phone=phone, channel=channel))
            )  # fmt: skip
        return calls

    def medical_insurance(self):
        rng = self.rng("medical-insurance")
        count = 18
        days = self._days(rng, 3, count, recent_weight=1.0)
        calls = []
        for day in days:
            if not self.inside(day):
                continue
            channel, title, content = rng.choice(MEDICAL_INSURANCE)
            self.generator.rng = rng
            address, grid = self.generator.place()
            at = self.moment(day, rng.randint(8, 19), rng.randrange(60))
            calls.append(
                (at, self._body(rng, category="050403", title=title, content=content,
                                address=address, area=grid, phone=None, channel=channel,
                                request_type="consult"))
            )  # fmt: skip
        return calls

    # -- 4. 推诿扯皮 and 弄虚作假 -------------------------------------------------------------

    def last_month_days(self, days):
        """The working days on or after each day of the month before the last day's month
        (inside the history only)."""
        first_of_this = self.last.replace(day=1)
        first = (first_of_this - dt.timedelta(days=1)).replace(day=1)
        out = []
        for number in days:
            day = first.replace(day=number)
            while not self.workday(day):
                day += dt.timedelta(days=1)
            if day < first_of_this and self.inside(day):
                out.append(day)
        return out

    def bounced(self):
        rng = self.rng("bounced")
        streets = sorted(code for code, (d, _, _) in self.streets.items() if d["code"] == "370705")
        calls = []
        for day, (title, content) in zip(
            self.last_month_days((5, 12, 19)), BOUNCED_MANHOLE, strict=False
        ):
            _, _, communities = self.streets[rng.choice(streets)]
            address, grid = self._address(rng, rng.choice(communities)["code"])
            at = self.moment(day, rng.randint(8, 10), rng.randrange(60), rng.randrange(60))
            body = self._body(rng, category="010102", title=title,
                              content=content.format(addr=address), address=address,
                              area=grid, phone=None)  # fmt: skip
            body["story"] = {
                "kind": "bounced",
                "units": list(BOUNCING_UNITS),
                "notes": BOUNCED_NOTES,
            }
            calls.append((at, body))
        return calls

    def claimed_solved(self):
        rng = self.rng("claimed-solved")
        _, _, communities = self.streets[CLAIMING_STREET]
        calls = []
        for day, (title, content) in zip(
            self.last_month_days((2, 6, 10, 14)), CLAIMED_SOLVED, strict=False
        ):
            address, grid = self._address(rng, rng.choice(communities)["code"])
            at = self.moment(day, rng.randint(8, 11), rng.randrange(60), rng.randrange(60))
            body = self._body(rng, category="020502", title=title,
                              content=content.format(addr=address), address=address,
                              area=grid, phone=None)  # fmt: skip
            body["story"] = {
                "kind": "claimed_solved",
                "unit": f"U-S-{CLAIMING_STREET}",
                "reply": CLAIMED_SOLVED_REPLY,
                "comment": CLAIMED_SOLVED_COMMENT,
            }
            calls.append((at, body))
        return calls
