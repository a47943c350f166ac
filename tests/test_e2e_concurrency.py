"""Two workers sending one campaign at the same moment never send to the same recipient.

One ir.cron record lets one cron worker run at a time, so two servers take
turns; this drives the claim mechanism itself from two threads, each with
its own database connection and real commits, as two servers' workers would.
"""

import threading
from unittest.mock import patch

from .scenario import ACCOUNT_EMAIL, deliveries


def _registry(dbname):
    """Load the database's registry in this process, as a server would (not as a test run)."""
    from odoo.modules.registry import Registry  # noqa: PLC0415 -- importable once pytest-odoo set Odoo up
    from odoo.tools import config  # noqa: PLC0415

    # pytest-odoo sets test_enable, which would make loading a registry run the addons' tests
    with patch.dict(config.options, {"test_enable": False}):
        return Registry(dbname)


def _create_campaign(registry, sink, recipients):
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        server = env["ir.mail_server"].create(
            {
                "name": "sink",
                "smtp_host": "127.0.0.1",
                "smtp_port": sink.port,
                "smtp_encryption": "none",
            }
        )
        account = env["xrm.email.account"].create(
            {
                "name": "Concurrent",
                "email_from": ACCOUNT_EMAIL,
                "mail_server_id": server.id,
            }
        )
        partners = env["res.partner"].create(
            [{"name": f"Recipient {index}", "email": f"r{index}@example.org"} for index in range(recipients)]
        )
        campaign = env["xrm.email.campaign"].create(
            {
                "name": "Two workers",
                "account_id": account.id,
                "subject": "Hi",
                "body_html": "<p>{{ recipient.name }}</p>",
            }
        )
        campaign.add_partners(partners.ids)
        campaign.action_send_now()
        return campaign.id


def test_two_workers_at_once_share_the_work_without_duplicates(e2e_database, smtp_sink):
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415

    recipients = 1000
    smtp_sink.handler.delay = 0.002
    registry = _registry(e2e_database)
    campaign_id = _create_campaign(registry, smtp_sink, recipients)
    sent_by_worker = {}
    errors = []

    def work(name):
        try:
            with registry.cursor() as cr:
                campaign = api.Environment(cr, SUPERUSER_ID, {})["xrm.email.campaign"].browse(campaign_id)
                total = 0
                # small batches: many claims at the same moment
                while processed := campaign._send_one_batch(10, 300):
                    total += processed
                sent_by_worker[name] = total
        except Exception as error:  # noqa: BLE001 -- reported by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(f"worker-{index}",)) for index in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)

    assert not errors, errors
    by_address, lost, duplicates = deliveries(smtp_sink, recipients)
    print(f"two concurrent workers: {sent_by_worker}, lost {len(lost)}, duplicates {duplicates}")
    assert (len(lost), duplicates) == (0, 0)
    assert sum(sent_by_worker.values()) == recipients
    assert min(sent_by_worker.values()) >= recipients // 4, f"both workers sent a fair share: {sent_by_worker}"
    registry.delete(e2e_database)
