"""The ops notebook's stall detection, send rate and CSV export: plain Python, no server."""

import csv
import io
import re
from datetime import datetime, timedelta

import pytest

from notebooks.campaign_ops import (
    Campaign,
    CampaignOps,
    OpsError,
    failures_csv,
    find_stall,
    send_rate,
)

NOW = datetime(2026, 5, 4, 12, 0, 0)
STALL_AFTER = timedelta(minutes=10)
HEALTHY = {"cron_active": True, "cron_lastcall": NOW - timedelta(seconds=30), "cron_nextcall": NOW}


def campaign(state="sending", last_sent_minutes_ago=30, started_minutes_ago=60):
    return Campaign(
        id=7,
        name="News",
        state=state,
        progress=40,
        total=100,
        sent=40,
        failed=0,
        pending=60,
        cancelled=0,
        started_by="Ann",
        started_at=NOW - timedelta(minutes=started_minutes_ago),
        scheduled_at=None,
        finished_at=None,
        changed_at=NOW - timedelta(minutes=started_minutes_ago),
        last_sent_at=NOW - timedelta(minutes=last_sent_minutes_ago) if last_sent_minutes_ago is not None else None,
    )


def test_a_send_that_keeps_sending_is_not_stalled():
    assert find_stall(campaign(last_sent_minutes_ago=1), NOW, STALL_AFTER, HEALTHY, []) is None


def test_only_a_send_in_progress_can_stall():
    for state in ("draft", "scheduled", "done", "cancelled"):
        assert find_stall(campaign(state=state), NOW, STALL_AFTER, HEALTHY, []) is None


def test_a_fresh_start_is_measured_from_the_start_not_from_nothing():
    assert (
        find_stall(campaign(last_sent_minutes_ago=None, started_minutes_ago=2), NOW, STALL_AFTER, HEALTHY, []) is None
    )
    stall = find_stall(campaign(last_sent_minutes_ago=None, started_minutes_ago=15), NOW, STALL_AFTER, HEALTHY, [])
    assert stall.idle == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("diagnostics", "errors", "expected"),
    [
        ({**HEALTHY, "cron_active": False}, [], "cron .* is inactive"),
        (HEALTHY, ["connection error: [Errno 111] Connection refused"] * 3, "cannot be reached .*Errno 111"),
        (HEALTHY, ["451 4.3.0 try again later", "421 too busy"], "answers 'try later' to every mail .*451"),
        (HEALTHY, ["550 5.7.1 relaying denied"] * 2, "refuses every mail .*550 5.7.1"),
        ({**HEALTHY, "cron_lastcall": NOW - timedelta(hours=2)}, [], "cron has not run since .*--max-cron-threads=0"),
        ({**HEALTHY, "cron_lastcall": None}, [], "cron has not run yet"),
        (HEALTHY, ["451 later", "550 no"], "cannot be told from here"),
    ],
)
def test_the_likely_reason_of_a_stall(diagnostics, errors, expected):
    stall = find_stall(campaign(), NOW, STALL_AFTER, diagnostics, errors)
    assert stall.idle == timedelta(minutes=30)
    assert stall.describe().startswith("no mail sent for 30 min: ")
    assert re.search(expected, stall.reason), stall.reason


def test_send_rate_in_mails_per_minute_with_the_gaps_kept():
    start = datetime(2026, 5, 4, 12, 0, 0)
    times = [start + timedelta(seconds=second) for second in (0, 1, 2, 3, 4, 5, 31, 32)]
    rates = send_rate(times, bucket_seconds=10)
    assert [moment - start for moment, _rate in rates] == [timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert [rate for _moment, rate in rates] == [36.0, 0.0, 0.0, 12.0]
    assert send_rate([]) == []


def test_failures_csv_round_trips_commas_quotes_and_line_breaks():
    rows = [
        {
            "name": 'Doe, "Jo"',
            "email": "jo@example.org",
            "kind": "permanent",
            "tries": 0,
            "error": "550 5.1.1\nmailbox unavailable",
            "failed_at": NOW,
        }
    ]
    parsed = list(csv.reader(io.StringIO(failures_csv(rows))))
    assert parsed[0] == ["name", "email", "kind", "tries", "error", "failed_at_utc"]
    assert parsed[1] == ['Doe, "Jo"', "jo@example.org", "permanent", "0", "550 5.1.1\nmailbox unavailable", str(NOW)]


def test_settings_from_environment_name_what_is_missing():
    with pytest.raises(OpsError, match="XRM_OPS_DB, XRM_OPS_PASSWORD or XRM_OPS_API_KEY"):
        CampaignOps.from_env({"XRM_OPS_URL": "http://odoo", "XRM_OPS_LOGIN": "ann"})
    ops = CampaignOps.from_env(
        {"XRM_OPS_URL": "http://odoo", "XRM_OPS_DB": "prod", "XRM_OPS_LOGIN": "ann", "XRM_OPS_API_KEY": "k"}
    )
    assert (ops.url, ops.database, ops.login, ops.password) == ("http://odoo", "prod", "ann", "k")
    assert "k" not in repr(ops), "the secret never shows in a notebook's output"
