def test_create_and_dispatch_through_api(api):
    created = api("operator").post(
        "/tickets",
        json={
            "channel": "phone",
            "request_type": "complaint",
            "category": "0101",
            "content": "东关街道路灯不亮",
            "requester_phone": "13800001111",
            "area": "370705001",
        },
    )
    assert created.status_code == 201, created.json
    number = created.json["data"]["number"]
    dispatched = api("dispatcher").post(
        f"/tickets/{number}/dispatch", json={"lead_unit": "U-S-370705001"}
    )
    assert dispatched.status_code == 200, dispatched.json
    assert dispatched.json["data"]["status"]["value"] == "dispatched"
    signed = api("dongguan").post(f"/tickets/{number}/sign", json={})
    assert signed.status_code == 200, signed.json
