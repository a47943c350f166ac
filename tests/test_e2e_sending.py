"""End-to-end: send now, Status tab, cancel and resume, delayed sending, on a real server."""

import time
import xmlrpc.client

import pytest

from .odoo_process import wait_for
from .scenario import create_campaign, create_user, deliveries, record_id, results_mails, status


def test_send_now_returns_at_once_and_sends_in_the_background(odoo_server, smtp_sink):
    server = odoo_server()
    smtp_sink.handler.delay = 0.01  # a provider that takes 10 ms a mail: 300 mails take 3 s or more
    campaign = create_campaign(server, smtp_sink, 300)
    create_user(server, "viewer", "group_campaign_viewer")

    started = time.monotonic()
    action = server.rpc("xrm.email.campaign", "action_send_now", [campaign])
    returned_after = time.monotonic() - started
    assert action["res_id"] == campaign and action["views"][0][1] == "form"
    first = status(server, campaign, login="viewer", password="viewer")
    assert first["state"] == "sending"
    assert first["sent_count"] < 300, f"the request sent everything itself ({returned_after:.1f}s)"
    assert first["started_by_id"][0] == server.uid()

    seen = []

    def finished():
        current = status(server, campaign, login="viewer", password="viewer")
        seen.append(current["sent_count"])
        return current["state"] == "done" and current

    final = wait_for(finished, timeout=120, interval=0.3, message="campaign done")
    assert final["sent_count"] == 300 and final["progress"] == 100 and final["finished_at"]
    assert seen == sorted(seen) and len(set(seen)) > 2, f"the Status tab counted up: {seen}"
    by_address, lost, duplicates = deliveries(smtp_sink, 300)
    assert (lost, duplicates) == (set(), 0)
    wait_for(lambda: results_mails(smtp_sink), timeout=30, message="results mail")
    assert len(results_mails(smtp_sink)) == 1
    assert "300 sent, 0 not sent" in results_mails(smtp_sink)[0]["subject"]


def test_cancel_within_one_message_and_resume_without_resending(odoo_server, smtp_sink):
    server = odoo_server()
    smtp_sink.handler.delay = 0.01
    campaign = create_campaign(server, smtp_sink, 400)
    create_user(server, "viewer", "group_campaign_viewer")
    create_user(server, "editor", "group_campaign_user")
    server.rpc("xrm.email.campaign", "action_send_now", [campaign], login="editor", password="editor")
    wait_for(lambda: len(smtp_sink.handler.snapshot()) >= 50, timeout=60, interval=0.05, message="50 sent")

    with pytest.raises(xmlrpc.client.Fault, match="need Edit rights"):
        server.rpc("xrm.email.campaign", "action_cancel", [campaign], login="viewer", password="viewer")
    server.rpc("xrm.email.campaign", "action_cancel", [campaign], login="editor", password="editor")
    delivered_at_cancel = len(smtp_sink.handler.snapshot())
    time.sleep(1.0)  # a send that ignored the cancel would deliver ~100 more in this second
    assert len(smtp_sink.handler.snapshot()) <= delivered_at_cancel + 1
    cancelled = status(server, campaign)
    assert cancelled["state"] == "cancelled" and cancelled["sent_count"] < 400
    assert not results_mails(smtp_sink)

    server.rpc("xrm.email.campaign", "action_resume", [campaign], login="editor", password="editor")
    wait_for(lambda: status(server, campaign)["state"] == "done", timeout=120, message="campaign done")
    by_address, lost, duplicates = deliveries(smtp_sink, 400)
    assert (lost, duplicates) == (set(), 0)
    wait_for(lambda: results_mails(smtp_sink), timeout=30, message="results mail")
    assert len(results_mails(smtp_sink)) == 1


def test_delayed_send_is_picked_up_by_the_cron(odoo_server, smtp_sink):
    # ODOO_NOTIFY_CRON_CHANGES makes a write to the cron's nextcall wake the cron
    # thread, so the test can make "the 5-minute tick" happen now.
    server = odoo_server(env={"ODOO_NOTIFY_CRON_CHANGES": "1"})
    campaign = create_campaign(server, smtp_sink, 20)
    cron = record_id(server, "xrm_email_campaign.ir_cron_send_campaigns")

    def tick():
        before = server.rpc("ir.cron", "read", [cron], ["lastcall"])[0]["lastcall"]
        server.rpc("ir.cron", "write", [cron], {"nextcall": "2000-01-01 00:00:00"})
        wait_for(
            lambda: server.rpc("ir.cron", "read", [cron], ["lastcall"])[0]["lastcall"] != before,
            timeout=90,
            message="cron tick",
        )

    later = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3600))
    server.rpc("xrm.email.campaign", "write", [campaign], {"scheduled_at": later})
    server.rpc("xrm.email.campaign", "action_schedule", [campaign])
    tick()
    assert status(server, campaign)["state"] == "scheduled"
    assert smtp_sink.handler.snapshot() == []

    server.rpc("xrm.email.campaign", "action_unschedule", [campaign])
    assert status(server, campaign)["state"] == "draft"
    server.rpc("xrm.email.campaign", "action_schedule", [campaign])
    # time passes: the scheduled moment is now behind us
    server.rpc("xrm.email.campaign", "write", [campaign], {"scheduled_at": "2000-01-01 00:00:00"})
    tick()
    wait_for(lambda: status(server, campaign)["state"] == "done", timeout=60, message="campaign done")
    by_address, lost, duplicates = deliveries(smtp_sink, 20)
    assert (lost, duplicates) == (set(), 0)
