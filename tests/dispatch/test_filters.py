"""The ticket list filters' parsing (``dispatch.filters``), which the JSON API and the search
page share: dates as whole local days, words, numbers and phones. The queries themselves are
tested through both (tests/dispatch/api/test_tickets.py, tests/dashboards/pages/test_search.py).
"""

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from dispatch import filters
from hotline.enums import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")


def parse_range(**args):
    errors = {}
    start, end = filters.received_range(args, "Asia/Shanghai", errors)
    return start, end, errors


def test_a_date_range_includes_both_whole_days():
    start, end, errors = parse_range(received_from="2026-11-01", received_to="2026-11-30")
    assert errors == {}
    assert start == dt.datetime(2026, 11, 1, tzinfo=SHANGHAI)
    assert end == dt.datetime(2026, 12, 1, tzinfo=SHANGHAI)  # the 30th included, whole
    assert end.astimezone(dt.UTC) == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)


def test_one_day_is_a_range_of_24_hours():
    start, end, errors = parse_range(received_from="2026-11-05", received_to="2026-11-05")
    assert errors == {} and end - start == dt.timedelta(days=1)


def test_a_moment_as_upper_bound_is_excluded_and_kept_as_given():
    start, end, errors = parse_range(received_to="2026-11-05T08:30:00")
    assert start is None and errors == {}
    assert end == dt.datetime(2026, 11, 5, 8, 30, tzinfo=SHANGHAI)
    _, end, _ = parse_range(received_to="2026-11-05T00:30:00Z")
    assert end == dt.datetime(2026, 11, 5, 0, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "args, errors",
    [
        (
            {"received_from": "2026-11-06", "received_to": "2026-11-05"},
            {"received_to": "结束日期不能早于开始日期"},
        ),
        ({"received_from": "11/05/2026"}, {"received_from": filters.DATE_FORMAT_ERROR}),
        ({"received_to": "2026-02-30"}, {"received_to": filters.DATE_FORMAT_ERROR}),
        ({"received_to": "9999-12-31"}, {"received_to": "日期超出范围"}),
        ({"received_from": "0001-01-01"}, {"received_from": "日期超出范围"}),
    ],
)
def test_bad_ranges_are_named(args, errors):
    start, end, found = parse_range(**args)
    assert found == errors


def test_blank_dates_are_absent():
    assert parse_range(received_from="", received_to="") == (None, None, {})


@pytest.mark.parametrize(
    "raw, words",
    [
        ("路灯", ["路灯"]),
        ("  路灯   不亮 ", ["路灯", "不亮"]),
        ("路灯\u3000不亮", ["路灯", "不亮"]),  # a full-width space
        ("路灯 路灯", ["路灯"]),
        ("1 2 3 4 5", ["1", "2", "3", "4", "5"]),
    ],
)
def test_words(raw, words):
    errors = {}
    assert filters.search_words(raw, errors) == words and errors == {}


def test_too_many_or_too_long_words():
    errors = {}
    assert filters.search_words("1 2 3 4 5 6", errors) == []
    assert errors == {"q": "关键词最多 5 个（以空格分隔）"}
    errors = {}
    assert filters.search_words("字" * 101, errors) == [] and "100" in errors["q"]


@pytest.mark.parametrize(
    "pattern, raw", [("%路\\%灯\\_%", "路%灯_"), ("%C:\\\\路径%", "C:\\路径"), ("%%", "")]
)
def test_like_pattern_takes_wildcards_literally(pattern, raw):
    assert filters.like_pattern(raw) == pattern


def test_a_whole_number_is_matched_exactly_a_part_by_like():
    errors = {}
    whole = filters.number_condition(" wf2026110500000042 ", errors)
    assert str(whole.compile(compile_kwargs={"literal_binds": True})).endswith(
        "= 'WF2026110500000042'"
    )
    part = filters.number_condition("0042", errors)
    assert "LIKE '%0042%'" in str(part.compile(compile_kwargs={"literal_binds": True}))
    assert errors == {}
    assert filters.number_condition("W" * 33, errors) is None and "number" in errors


@pytest.mark.parametrize("role", sorted(filters.PHONE_SEARCH_ROLES))
def test_phone_is_normalised_for_roles_that_see_phones(role):
    errors = {}
    actor = SimpleNamespace(role=role)
    assert filters.search_phone("+86 138-0536-0001", actor, errors) == "13805360001"
    assert filters.search_phone("0536-8888888", actor, errors) == "05368888888"
    assert errors == {}


@pytest.mark.parametrize("role", [Role.leader, Role.admin])
def test_roles_seeing_masked_phones_may_not_search_by_one(role):
    errors = {}
    assert filters.search_phone("13805360001", SimpleNamespace(role=role), errors) is None
    assert errors == {"phone": f"{role.label}不能按联系电话查询"}


def test_the_phone_search_roles_are_those_named_in_the_issue():
    wanted = {Role.operator, Role.dispatcher, Role.callback_agent, Role.supervisor}
    assert wanted <= filters.PHONE_SEARCH_ROLES
    assert not {Role.leader, Role.admin} & filters.PHONE_SEARCH_ROLES


@pytest.mark.parametrize(
    "word, operator", [("路灯", "LIKE"), ("100%", "LIKE"), ("WiFi", "ILIKE"), ("ａ栋", "ILIKE")]
)
def test_case_is_ignored_only_for_words_with_cased_letters(word, operator):
    from sqlalchemy.dialects import postgresql

    sql = str(filters.word_condition(word).compile(dialect=postgresql.dialect()))
    assert sql.count(f" {operator} ") == 3  # title, content, address
    assert operator == "ILIKE" or " ILIKE " not in sql
