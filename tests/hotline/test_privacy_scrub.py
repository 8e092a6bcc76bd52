"""``privacy.scrub_personal``: what the public reads keeps no phone, ID number or e-mail."""

import pytest

from hotline.privacy import EMAIL_REMOVED, ID_REMOVED, PHONE_REMOVED, scrub_personal


@pytest.mark.parametrize(
    "text",
    [
        "请回电 13805360001 谢谢",
        "请回电13805360001谢谢",
        "手机 138-0536-0001",
        "手机 138 0536 0001",
        "手机 +86 13805360001",
        "手机 +8613805360001",
        "手机１３８０５３６０００１",  # full-width digits
        "座机 0536-8234567",
        "座机 05368234567",
        "座机（0536）82345678",
        "座机 (010) 82345678",
        "座机 8234567",
        # Grouped as people write them.
        "手机 1391 234 5678",
        "手机 139 123 45678",
        "手机 139.1234.5678",
        "座机 0536-8888 8888",
        "座机 010 8234 5678",
    ],
)
def test_phone_numbers_are_removed(text):
    scrubbed = scrub_personal(text)
    assert PHONE_REMOVED in scrubbed
    digits = [c for c in scrubbed if c.isdigit()]
    assert len(digits) < 4, scrubbed


def test_id_numbers_are_removed_whole_not_read_as_phones():
    assert scrub_personal("身份证 37070519800101123X 办理") == f"身份证 {ID_REMOVED} 办理"
    assert scrub_personal("证号370705198001011234。") == f"证号{ID_REMOVED}。"
    assert scrub_personal("身份证 370702 19900101 1234") == f"身份证 {ID_REMOVED}"
    assert scrub_personal("身份证 370702-19900101-123x。") == f"身份证 {ID_REMOVED}。"


def test_emails_are_removed():
    assert scrub_personal("邮箱 wang.li@example.com") == f"邮箱 {EMAIL_REMOVED}"


def test_ordinary_text_and_short_numbers_stay():
    text = "胜利东街100号3单元，路灯坏了5天，2024年12月1日起，共12盏"
    assert scrub_personal(text) == text
    assert scrub_personal("") == ""
    assert scrub_personal(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-05 起停电",
        "2026.12.05 13:45 到场",
        "胜利东街100号",
        "价格 12.5-13.5 元",
        "10:30-11:30 施工",
        "第1 2 3 4 5 6 7条",
    ],
)
def test_dates_times_and_house_numbers_are_not_taken_for_phones(text):
    assert scrub_personal(text) == text


def test_numbers_on_two_lines_are_two_numbers():
    assert scrub_personal("13805360001\n2026-12-05") == f"{PHONE_REMOVED}\n2026-12-05"


def test_longer_digit_runs_are_not_cut_into_a_phone():
    # A 20-digit run is no phone and no ID number: nothing inside it is taken for one.
    assert scrub_personal("编号 12345678901234567890") == "编号 12345678901234567890"
