"""A call simulator: realistic citizen requests fed to a running server through its API.

Used by ``hotline simulate`` for a lively demo and by ``bench/intake.py`` for load. The text
comes from ``seed_data/calls.json`` (templates written for this project) and the places from
``seed_data/areas.json``.
"""

import json
import random
import time
import uuid
from collections import Counter, deque
from pathlib import Path

import requests

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"


class CallGenerator:
    """Makes request bodies for ``POST /api/v1/tickets``."""

    def __init__(self, rng=None, seed_dir=SEED_DIR):
        self.rng = rng or random.Random()
        with open(seed_dir / "calls.json", encoding="utf-8") as f:
            calls = json.load(f)
        with open(seed_dir / "areas.json", encoding="utf-8") as f:
            areas = json.load(f)
        self.templates = calls["templates"]
        self.roads = calls["roads"]
        self.landmarks = calls["landmarks"]
        self.surnames = calls["surnames"]
        self.places = [
            (district, street, community)
            for district in areas["districts"]
            for street in district["streets"]
            for community in street["communities"]
        ]

    def place(self):
        """(address text, area code) of a random place in the city."""
        district, street, community = self.rng.choice(self.places)
        code = district["code"]
        if self.rng.random() < 0.3 and self.landmarks.get(code):
            spot = self.rng.choice(self.landmarks[code]) + self.rng.choice(
                ["门口", "附近", "东侧", "北门", "对面", ""]
            )
        else:
            road = self.rng.choice(self.roads.get(code) or ["中心街"])
            spot = f"{road}{self.rng.randint(1, 999)}号"
        grid = f"{community['code']}{self.rng.randint(1, 3):03d}"
        address = f"{district['name']}{street['name']}{community['name']}{spot}"
        return address, grid

    def phone(self):
        return "1" + self.rng.choice("3456789") + "".join(self.rng.choices("0123456789", k=9))

    def call(self, template=None):
        """A request body from ``template`` (default: a random one of ``calls.json``)."""
        template = template or self.rng.choice(self.templates)
        address, area = self.place()
        body = {
            "channel": template.get("channel", "phone"),
            "request_type": template.get("request_type", "complaint"),
            "urgency": template.get("urgency", "normal"),
            "category": template["category"],
            "title": template["title"],
            "content": template["content"].replace("{place}", address),
            "address": address,
            "area": area,
        }
        if self.rng.random() < 0.9:
            body["requester_name"] = self.rng.choice(self.surnames) + self.rng.choice(
                ["先生", "女士"]
            )
            body["requester_phone"] = self.phone()
        return body


class Client:
    """An API session for one user, authenticated with a bearer token."""

    def __init__(self, base_url, username, password, timeout=10):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.timeout = timeout
        login = self.http.post(
            f"{self.base}/auth/login",
            json={"username": username, "password": password},
            timeout=timeout,
        )
        login.raise_for_status()
        csrf = login.json()["data"]["csrf_token"]
        token = self.http.post(
            f"{self.base}/auth/tokens",
            json={"label": "simulator"},
            headers={"X-CSRF-Token": csrf},
            timeout=timeout,
        )
        token.raise_for_status()
        self.http.cookies.clear()
        self.http.headers["Authorization"] = "Bearer " + token.json()["data"]["token"]
        self.user = self.get("/me")["data"]

    def get(self, path, **params):
        return self.http.get(self.base + path, params=params, timeout=self.timeout).json()

    def post(self, path, body, **headers):
        return self.http.post(self.base + path, json=body, headers=headers, timeout=self.timeout)

    def create(self, body):
        """Create a ticket, retrying network failures with the same idempotency key."""
        key = uuid.uuid4().hex
        for attempt in range(3):
            try:
                return self.post("/tickets", body, **{"Idempotency-Key": key})
            except requests.ConnectionError:
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))


class Lifecycle:
    """Moves simulated tickets along with the demo accounts: dispatch, sign, contact, finish,
    approve a reply in review (办结审核), call back and close, so every board and queue has
    something in it."""

    def __init__(self, base_url, password, rng):
        with open(SEED_DIR / "users.json", encoding="utf-8") as f:
            users = json.load(f)
        self.rng = rng
        by_role = {}
        for user in users:
            by_role.setdefault(user["role"], []).append(user)
        self.dispatcher = Client(base_url, by_role["dispatcher"][0]["username"], password)
        self.callback = Client(base_url, by_role["callback_agent"][0]["username"], password)
        self.supervisor = Client(base_url, by_role["supervisor"][0]["username"], password)
        self.handlers = {
            u["unit"]: Client(base_url, u["username"], password)
            for u in by_role.get("unit_handler", [])
        }
        self.open = deque(maxlen=500)
        #: Operations the server refused, by name (a correct simulator has none).
        self.refused = Counter()

    def add(self, ticket):
        self.open.append(ticket["number"])

    def step(self):
        if not self.open:
            return
        number = self.open.popleft()
        ticket = self.dispatcher.get(f"/tickets/{number}").get("data")
        if ticket is None:
            return
        status = ticket["status"]["value"]
        lead = (ticket["lead_unit"] or {}).get("code")
        handler = self.handlers.get(lead)
        if status == "received":
            unit = self._suggest(ticket)
            if unit is None:
                return  # nowhere to send it: left to a human dispatcher
            self._check("dispatch", self.dispatcher, number, {"lead_unit": unit})
        elif status in {"dispatched", "reopened"} and handler:
            self._check("sign", handler, number, {})
        elif status == "signed" and handler:
            self._check("contact", handler, number, {"note": "已电话联系诉求人，约定上门查看。"})
        elif status == "contacted" and handler:
            self._check("finish", handler, number, {"result": "经现场核实，问题已处理完毕。"})
        elif status == "reviewing":
            # 办结审核: the reply waits for a supervisor before the citizen hears of it.
            self._check("approve-reply", self.supervisor, number, {})
        elif status == "finished":
            self._call_back(number, ticket)
        else:
            return
        self.open.append(number)

    def _check(self, operation, client, number, body):
        response = client.post(f"/tickets/{number}/{operation}", body)
        if response.status_code >= 400:
            self.refused[operation] += 1
        return response

    def _suggest(self, ticket):
        """The unit the server's dispatch rule names (``routing.dispatch_unit``: never the
        hotline centre), or None."""
        if not ticket["category"]:
            return None
        params = {"category": ticket["category"]["code"]}
        if ticket["area"]:
            params["area"] = ticket["area"]["code"]
        unit = self.dispatcher.get("/routing/suggest", **params).get("data", {}).get("unit")
        return unit["code"] if unit else None

    def _call_back(self, number, ticket):
        if not ticket["requester_phone"]:
            self._check("close", self.callback, number, {"reason": "诉求人未留电话"})
            return
        # A happy answer archives the ticket; an unhappy one waits for a supervisor's review.
        happy = self.rng.random() < 0.85
        self._check(
            "callback",
            self.callback,
            number,
            {
                "outcome": "answered",
                "solved": "solved" if happy else "unsolved",
                "satisfaction": "satisfied" if happy else "dissatisfied",
            },
        )


def run(base_url, username, password, *, rate, count, lifecycle, random_seed, echo=print):
    rng = random.Random(random_seed)
    generator = CallGenerator(rng)
    operator = Client(base_url, username, password)
    mover = Lifecycle(base_url, password, rng) if lifecycle else None
    interval = 1.0 / rate if rate > 0 else 0
    made = 0
    next_at = time.monotonic()
    while count == 0 or made < count:
        response = operator.create(generator.call())
        made += 1
        body = response.json()
        if response.status_code in (200, 201):
            echo(f"{body['data']['number']}  {body['data']['title']}")
            if mover:
                mover.add(body["data"])
        else:
            echo(f"失败 {response.status_code}: {body['error']['message']}")
        if mover:
            for _ in range(3):
                mover.step()
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if mover and mover.refused:
        refused = "，".join(f"{name} {n} 次" for name, n in sorted(mover.refused.items()))
        echo(f"服务器拒绝的操作：{refused}")
    return made
