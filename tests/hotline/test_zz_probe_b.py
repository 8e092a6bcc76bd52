from tests.conftest import make_ticket, ticket_count

BASE = {"channel": "phone", "request_type": "complaint", "content": "路灯不亮"}

def show(r):
    print(r.status_code, r.get_data()[:300].decode("unicode_escape", "replace"))

def test_probe(api, db, user):
    op = api("operator")
    show(op.post("/tickets", json={**BASE, "requester_phone": "138０５３６０００１"}))
    t = make_ticket(db, user("operator"), category="010101")
    for qs in ["q=%00", "phone=%00", "category=%00", "unit=%00", "area=%00",
               "category=__", "category=0_", "received_from=2020-01-01"]:
        show(op.get("/tickets?" + qs))
    show(op.get("/tickets/%00"))
    show(op.get("/routing/suggest?category=%00"))
    show(op.get("/areas?parent=%00"))
