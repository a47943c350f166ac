import time
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import XrmCampaignCase


@tagged("post_install", "-at_install")
class TestCampaignThrottle(XrmCampaignCase):
    """The account's rate limit and backing off on 4xx, against the real SMTP sink."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partners = cls._create_partners(6)

    def test_rate_limit_spaces_the_mails_at_the_moment_of_sending(self):
        self.account.rate_limit_per_minute = 600  # one mail every 0.1 s
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        self._run_cron()
        self.assertEqual(campaign.sent_count, 6)
        accepted = sorted(
            m["received_at"] for m in self.smtp.handler.snapshot() if m["rcpt_tos"][0] != "campaigns@example.com"
        )
        gaps = [later - earlier for earlier, later in zip(accepted, accepted[1:], strict=False)]
        self.assertEqual(len(gaps), 5)
        self.assertGreaterEqual(min(gaps), 0.09, f"never faster than the limit: {gaps}")
        self.assertTrue(self.account.next_slot_at, "the slots are kept on the account, for every worker")

    def test_no_limit_sends_without_waiting(self):
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        started = time.monotonic()
        self._run_cron()
        self.assertEqual(campaign.sent_count, 6)
        self.assertLess(time.monotonic() - started, 5)
        self.assertFalse(self.account.next_slot_at)

    def test_a_slow_limit_stops_the_batch_at_the_run_deadline(self):
        self.account.rate_limit_per_minute = 300  # one mail every 0.2 s
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        processed = campaign._send_one_batch(50, 300, deadline=time.monotonic() + 0.5)
        self.assertIn(processed, (2, 3), "a run never sends past its deadline")
        self.assertEqual(campaign.pending_count, 6 - processed)
        pending = campaign.recipient_ids.filtered(lambda r: r.state == "pending")
        self.assertFalse(any(pending.mapped("claim_pid")), "the rest of the batch is handed back")

    def test_a_throttling_server_pauses_the_account_instead_of_failing(self):
        self.smtp.handler.refuse_all = "451 4.7.0 Too many messages, slow down"
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        self.env["xrm.email.campaign"]._cron_send_campaigns()
        self.env.invalidate_all()
        tried = campaign.recipient_ids.filtered("attempt_count")
        self.assertEqual(len(tried), 3, "three refusals in a row are enough to tell")
        self.assertEqual(set(campaign.recipient_ids.mapped("state")), {"pending"}, "nobody failed")
        self.assertGreater(self.account.paused_until, fields.Datetime.now() + timedelta(seconds=30))
        self.assertIn("451 4.7.0 Too many messages", self.account.pause_reason)

        # while paused, no worker sends for the account, nor tries anyone
        self.smtp.handler.refuse_all = None
        self.env["xrm.email.campaign"]._cron_send_campaigns()
        self.env.invalidate_all()
        self.assertEqual(campaign.recipient_ids.filtered("attempt_count"), tried)
        self.assertEqual(self.smtp.handler.snapshot(), [])

        # the pause and the recipients' backoff are over: everybody gets the mail once
        self.account.paused_until = fields.Datetime.now() - timedelta(seconds=1)
        campaign.recipient_ids.next_attempt_at = False
        self._run_cron()
        self.assertEqual((campaign.state, campaign.sent_count), ("done", 6))
        for partner in self.partners:
            self.assertEqual(len(self._deliveries_to(partner.email)), 1)

    def test_one_greylisted_recipient_does_not_pause_the_account(self):
        flaky = self.env["res.partner"].create({"name": "Flaky", "email": "tempfail@example.org"})
        campaign = self._create_campaign(flaky | self.partners)
        campaign.action_send_now()
        self._run_cron()
        self.assertEqual(campaign.sent_count, 6)
        self.assertFalse(self.account.paused_until)
