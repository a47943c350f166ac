"""The ops notebook's module (notebooks/campaign_ops.py) against a real Odoo server process
with the addon, a real PostgreSQL and a real SMTP server, logged in as real users."""

import csv
import io
import os
from datetime import timedelta

import pytest

from notebooks.campaign_ops import CampaignOps, OpsError, failures_csv, send_rate
from scripts.devdb import drop_database

from .odoo_process import OdooServer, free_port, new_database_from, wait_for
from .scenario import ACCOUNT_EMAIL, create_campaign, create_user, deliveries

BARE_TEMPLATE = os.environ.get("XRM_E2E_BARE_TEMPLATE", "xrm_e2e_bare_template")


def ops_for(server, login):
    return CampaignOps(f"http://127.0.0.1:{server.port}", server.dbname, login, login).connect()


def add_troubled_recipients(server, campaign):
    """Two addresses the sink refuses for good (550) and one it keeps deferring (451)."""
    partners = server.rpc(
        "res.partner",
        "create",
        [
            {"name": "Rita Reject", "email": "reject.rita@example.org"},
            {"name": "Rob Reject", "email": "reject.rob@example.org"},
            {"name": "Tim Tempfail", "email": "tempfail.tim@example.org"},
        ],
    )
    server.rpc("xrm.email.campaign", "add_partners", [campaign], partners)
    # one try before giving up, so the test need not wait for the backoff
    links = server.rpc("xrm.email.campaign.recipient", "search", [("partner_id", "=", partners[2])])
    server.rpc("xrm.email.campaign.recipient", "write", links, {"attempt_count": 4})


def test_connection_problems_each_give_one_clear_line(odoo_server, tmp_path):
    server = odoo_server()
    create_user(server, "viewer", "group_campaign_viewer")
    url = f"http://127.0.0.1:{server.port}"
    with pytest.raises(
        OpsError, match=r"^Login refused for 'viewer' on database '.*' at http://.*: wrong login, password"
    ):
        CampaignOps(url, server.dbname, "viewer", "not-the-password").connect()
    with pytest.raises(OpsError, match=r"^Database 'no_such_db' does not exist on http://127.0.0.1"):
        CampaignOps(url, "no_such_db", "viewer", "viewer").connect()
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OpsError, match=rf"^Odoo at {down} is not reachable: connection refused"):
        CampaignOps(down, server.dbname, "viewer", "viewer").connect()
    assert ops_for(server, "viewer").uid == server.rpc("res.users", "search", [("login", "=", "viewer")])[0]

    # a user of the database without any campaign right
    server.rpc("res.users", "create", {"name": "Outsider", "login": "outsider", "password": "outsider"})
    with pytest.raises(OpsError, match=r"^'outsider' may not read e-mail campaigns: .*E-mail Campaign"):
        ops_for(server, "outsider")

    bare = new_database_from(BARE_TEMPLATE)
    bare_server = OdooServer(bare, tmp_path).start()
    try:
        with pytest.raises(OpsError, match=r"^The addon xrm_email_campaign is not installed in database"):
            CampaignOps(f"http://127.0.0.1:{bare_server.port}", bare, "admin", "admin").connect()
    finally:
        bare_server.stop()
        drop_database(bare)


def test_overview_drill_down_and_rights_of_a_viewer_and_an_editor(odoo_server, smtp_sink):
    server = odoo_server()
    campaign = create_campaign(server, smtp_sink, 20, name="Ops news")
    add_troubled_recipients(server, campaign)
    create_user(server, "viewer", "group_campaign_viewer")
    create_user(server, "editor", "group_campaign_user")
    server.rpc("xrm.email.campaign", "action_send_now", [campaign], login="editor", password="editor")
    viewer, editor = ops_for(server, "viewer"), ops_for(server, "editor")
    wait_for(lambda: viewer.campaign(campaign).state == "done", timeout=90, message="campaign done")

    overview = {found.id: found for found in viewer.campaigns()}
    done = overview[campaign]
    assert (done.name, done.total, done.sent, done.failed, done.pending, done.progress) == (
        "Ops news",
        23,
        20,
        3,
        0,
        100,
    )
    assert done.started_by == "Editor" and done.started_at and done.finished_at
    assert done.last_sent_at is not None and done.started_at <= done.last_sent_at <= done.finished_at
    assert viewer.stalls(viewer.campaigns(), timedelta(0)) == {}, "a finished send never stalls"

    failed = viewer.failed_recipients(campaign)
    assert {row["email"]: row["kind"] for row in failed} == {
        "reject.rita@example.org": "permanent",
        "reject.rob@example.org": "permanent",
        "tempfail.tim@example.org": "temporary",
    }
    assert all(row["error"].startswith("550 5.1.1") for row in failed if row["kind"] == "permanent")
    assert "451" in next(row["error"] for row in failed if row["kind"] == "temporary")
    assert [row["name"] for row in viewer.failed_recipients(campaign, text="rob")] == ["Rob Reject"]
    assert len(viewer.failed_recipients(campaign, text="mailbox unavailable")) == 2
    assert [row["name"] for row in viewer.failed_recipients(campaign, kind="temporary")] == ["Tim Tempfail"]
    exported = list(csv.DictReader(io.StringIO(failures_csv(failed))))
    assert sorted(row["email"] for row in exported) == sorted(row["email"] for row in failed)

    assert viewer.link_type_breakdown(campaign) == {"E-mail campaign recipient": 20, "Unspecified": 3}
    times = viewer.send_times(campaign)
    assert len(times) == 20 and times == sorted(times)
    assert sum(rate for _moment, rate in send_rate(times, bucket_seconds=60)) == 20

    # a viewer reads everything and changes nothing: each refusal is the server's own words
    for action in (viewer.cancel, viewer.resume, viewer.retry_failed, viewer.send_test):
        with pytest.raises(OpsError, match="You need Edit rights on e-mail campaigns"):
            action(campaign)
    assert viewer.campaign(campaign).state == "done"

    smtp_sink.handler.tempfail_enabled = False  # the provider recovered
    assert editor.retry_failed(campaign, temporary_only=True) == 1
    wait_for(lambda: editor.campaign(campaign).state == "done", timeout=60, message="retry done")
    assert editor.campaign(campaign).failed == 2
    assert editor.retry_failed(campaign, temporary_only=False) == 2
    wait_for(lambda: editor.campaign(campaign).state == "done", timeout=60, message="second retry done")
    with pytest.raises(OpsError, match="Only a cancelled or interrupted send can be resumed"):
        editor.resume(campaign)

    assert editor.send_test(campaign) == ACCOUNT_EMAIL
    wait_for(
        lambda: any(m["subject"].startswith("[TEST]") for m in smtp_sink.handler.snapshot()),
        timeout=10,
        message="test mail",
    )
    by_address, lost, duplicates = deliveries(smtp_sink, 20)
    assert (lost, duplicates) == (set(), 0), "resume and retry never re-send to a recipient marked sent"
    assert len(by_address["tempfail.tim@example.org"]) == 1
    assert "reject.rita@example.org" not in by_address


def test_stalled_sends_are_flagged_with_their_likely_reason(odoo_server, smtp_sink):
    server = odoo_server()
    campaign = create_campaign(server, smtp_sink, 30, name="Stuck news")
    create_user(server, "editor", "group_campaign_user")
    editor = ops_for(server, "editor")
    lanes = server.rpc("ir.cron", "search", [("code", "=", "model._cron_send_campaigns()")])
    server.rpc("ir.cron", "write", lanes, {"active": False})
    server.rpc("xrm.email.campaign", "action_send_now", [campaign], login="editor", password="editor")

    diagnostics = editor.diagnostics()
    later = {**diagnostics, "server_time": diagnostics["server_time"] + timedelta(minutes=20)}
    assert editor.stalls(editor.campaigns(), timedelta(minutes=30), later) == {}, "not idle long enough yet"
    stall = editor.stalls(editor.campaigns(), timedelta(minutes=10), later)[campaign]
    assert "sending cron" in stall.reason and "inactive" in stall.reason
    assert stall.describe().startswith("no mail sent for 20 min")

    # cancel and resume while nothing is sent, then let the cron run against a dead SMTP server
    assert editor.cancel(campaign).state == "cancelled"
    assert editor.resume(campaign).state == "sending"
    mail_server = server.rpc("ir.mail_server", "search", [("name", "=", "E2E sink")])
    server.rpc("ir.mail_server", "write", mail_server, {"smtp_port": free_port()})
    server.rpc("ir.cron", "write", lanes, {"active": True})
    server.rpc("ir.cron", "method_direct_trigger", lanes[:1])
    wait_for(lambda: editor.recent_errors(campaign), timeout=30, message="connection errors recorded")
    diagnostics = editor.diagnostics()
    later = {**diagnostics, "server_time": diagnostics["server_time"] + timedelta(minutes=20)}
    stall = editor.stalls(editor.campaigns(), timedelta(minutes=10), later)[campaign]
    assert "SMTP server cannot be reached" in stall.reason and "connection" in stall.reason
    assert editor.campaign(campaign).sent == 0

    # the server is back: the send goes on by itself and nothing was lost
    server.rpc("ir.mail_server", "write", mail_server, {"smtp_port": smtp_sink.port})
    server.rpc(
        "xrm.email.campaign.recipient",
        "write",
        server.rpc("xrm.email.campaign.recipient", "search", [("campaign_id", "=", campaign)]),
        {"next_attempt_at": False},
    )
    server.rpc("ir.cron", "method_direct_trigger", lanes[:1])
    wait_for(lambda: editor.campaign(campaign).state == "done", timeout=60, message="campaign done")
    _by_address, lost, duplicates = deliveries(smtp_sink, 30)
    assert (lost, duplicates) == (set(), 0)
