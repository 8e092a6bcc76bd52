"""Tickets about a few matters at injected moments, for the hot-issue tests (database, pages,
API, browser)."""

import datetime as dt

import sqlalchemy as sa

from dashboards import hotspots
from hotline.models import HotIssue, HotIssueTicket

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

#: Two matters in 奎文区 东关街道 中学街社区 and one in 潍城区 城关街道 曹家巷社区.
NOISE = (
    "丽发新城搅拌站夜间施工噪音扰民",
    "丽发新城旁边的搅拌站每天夜里施工到凌晨，噪音很大，居民无法休息，请相关部门查处。",
    "370705001001",
)
WATER = (
    "中学街小区自来水发黄",
    "中学街小区这几天自来水发黄有异味，不能饮用，请供水公司尽快检查水质。",
    "370705001001",
)
LIGHT = (
    "曹家巷路灯不亮",
    "曹家巷一带的路灯已经一周不亮了，晚上行人出行很不安全，希望尽快维修。",
    "370702001001",
)


class City:
    def __init__(self, db, user, make_ticket):
        self.db = db
        self.operator = user("operator")
        self.make_ticket = make_ticket
        self.phone = 13805360100

    def call(self, matter, at, *, phone=None, category="010103"):
        title, content, area = matter
        if phone is None:
            self.phone += 1
            phone = str(self.phone)
        return self.make_ticket(
            self.operator,
            title=title,
            content=content,
            area=area,
            category=category,
            requester_phone=phone,
            now=at,
        )

    def memberships(self):
        return {
            r.ticket_id: (r.hot_issue_id, r.pinned)
            for r in self.db.execute(sa.select(HotIssueTicket)).scalars()
        }

    def groups(self):
        """{hot issue id: set of ticket ids}."""
        found = {}
        for ticket_id, (hot_id, _) in self.memberships().items():
            found.setdefault(hot_id, set()).add(ticket_id)
        return found


def two_issues(db, city, now=NOW):
    """Four noise calls (奎文区) and three streetlight calls (潍城区) grouped into two hot
    issues: (noise issue, light issue, noise tickets, light tickets)."""
    noise = [city.call(NOISE, now - (5 - i) * HOUR) for i in range(4)]
    light = [city.call(LIGHT, now - (5 - i) * HOUR) for i in range(3)]
    hotspots.Grouper().run(db, now)
    groups = city.groups()
    noise_id = next(h for h, ids in groups.items() if noise[0].id in ids)
    light_id = next(h for h, ids in groups.items() if light[0].id in ids)
    return db.get(HotIssue, noise_id), db.get(HotIssue, light_id), noise, light
