"""End-to-end: kill -9 in the middle of a send, restart, nothing lost, at most one duplicate.

Also the 10,000-recipient send under Odoo's default limits, threaded and with
--workers=2: no worker killed, no server reloaded, no duplicate.
"""

import re
import time

import pytest

from .odoo_process import wait_for
from .scenario import campaign_state_in_database, create_campaign, deliveries, results_mails, status

LIMIT_MESSAGES = re.compile(
    r"virtual real time limit|CPU time limit|Worker \(\d+\) timeout|Worker \(\d+\) CPU time limit|"
    r"virtual memory limit|Job .* timed out",
)


@pytest.mark.parametrize("workers", [0, 2], ids=["threaded", "workers2"])
def test_kill9_mid_send_resumes_by_itself(odoo_server, smtp_sink, e2e_database, workers):
    recipients = 1500
    server = odoo_server(workers=workers)
    smtp_sink.handler.delay = 0.004
    campaign = create_campaign(server, smtp_sink, recipients)
    server.rpc("xrm.email.campaign", "action_send_now", [campaign])
    wait_for(lambda: len(smtp_sink.handler.snapshot()) >= 300, timeout=90, interval=0.05, message="300 sent")

    server.kill()
    state, counts = campaign_state_in_database(e2e_database, campaign)
    delivered_before_restart = len(smtp_sink.handler.snapshot())
    assert state == "sending" and counts.get("pending", 0) > 0, counts

    restarted_at = time.monotonic()
    server.start()
    wait_for(
        lambda: len(smtp_sink.handler.snapshot()) > delivered_before_restart,
        timeout=60,
        interval=0.2,
        message="sending resumed after the restart",
    )
    resumed_after = time.monotonic() - restarted_at
    wait_for(lambda: status(server, campaign)["state"] == "done", timeout=180, message="campaign done")

    by_address, lost, duplicates = deliveries(smtp_sink, recipients)
    print(
        f"kill -9 ({'threaded' if not workers else f'{workers} workers'}): delivered before kill "
        f"{delivered_before_restart}, resumed {resumed_after:.1f}s after restart, lost {len(lost)}, "
        f"duplicates {duplicates}"
    )
    assert resumed_after < 30, "resumes by itself well within a minute, not at the cron's next poll"
    assert lost == set()
    assert duplicates <= 1, "at most one duplicate per crash per worker (one cron worker here)"
    for address, message_ids in by_address.items():
        assert len(set(message_ids)) == 1, f"{address} got the same mail with different Message-IDs"
    wait_for(lambda: results_mails(smtp_sink), timeout=30, message="results mail")
    assert len(results_mails(smtp_sink)) == 1
    final = status(server, campaign)
    assert final["sent_count"] == recipients


@pytest.mark.parametrize("workers", [0, 2], ids=["threaded", "workers2"])
def test_10000_recipients_under_default_limits(odoo_server, smtp_sink, workers):
    recipients = 10000
    server = odoo_server(workers=workers)  # Odoo's defaults: limit_time_real 120 s, limit_time_cpu 60 s
    campaign = create_campaign(server, smtp_sink, recipients)
    started = time.monotonic()
    server.rpc("xrm.email.campaign", "action_send_now", [campaign])
    wait_for(lambda: status(server, campaign)["state"] == "done", timeout=900, interval=1, message="campaign done")
    elapsed = time.monotonic() - started

    by_address, lost, duplicates = deliveries(smtp_sink, recipients)
    print(
        f"10,000 recipients ({'threaded' if not workers else f'{workers} workers'}): {elapsed:.1f}s, "
        f"{recipients / elapsed:.0f} mails/s, lost {len(lost)}, duplicates {duplicates}"
    )
    assert (len(lost), duplicates) == (0, 0)
    logs = server.logs()
    assert "Job 'E-mail campaigns: send'" in logs, "the cron reported its progress"
    assert not LIMIT_MESSAGES.findall(logs), LIMIT_MESSAGES.findall(logs)[:5]
    assert server.starts == 1 and server.process.poll() is None, "the server was never restarted"
