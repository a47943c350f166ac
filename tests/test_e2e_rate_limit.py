"""End-to-end: an account's rate limit holds across two Odoo servers sending one campaign."""

from .odoo_process import wait_for
from .scenario import ACCOUNT_EMAIL, create_campaign, deliveries


def test_rate_limit_holds_across_two_servers(odoo_server, smtp_sink):
    first, second = odoo_server(), odoo_server()
    campaign = create_campaign(first, smtp_sink, 40)
    account = first.rpc("xrm.email.campaign", "read", [campaign], ["account_id"])[0]["account_id"][0]
    first.rpc("xrm.email.account", "write", [account], {"rate_limit_per_minute": 300})  # a mail every 0.2 s

    first.rpc("xrm.email.campaign", "action_send_now", [campaign])
    wait_for(lambda: len(deliveries(smtp_sink, 40)[0]) == 40, timeout=120, interval=0.3, message="40 mails")

    _by_address, lost, duplicates = deliveries(smtp_sink, 40)
    assert (lost, duplicates) == (set(), 0)
    accepted = sorted(m["received_at"] for m in smtp_sink.handler.snapshot() if m["rcpt_tos"] != [ACCOUNT_EMAIL])
    gaps = [later - earlier for earlier, later in zip(accepted, accepted[1:], strict=False)]
    # Each mail is sent inside its own slot: a few milliseconds of SMTP after its start at most.
    assert min(gaps) >= 0.15, f"two mails closer than the limit allows: {min(gaps):.3f} s"
    assert accepted[-1] - accepted[0] >= 39 * 0.2 * 0.95
    shares = [first.mails_processed(), second.mails_processed()]
    assert all(shares), f"both servers sent, sharing the account's slots: {shares}"
