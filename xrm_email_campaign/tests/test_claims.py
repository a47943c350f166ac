from odoo.tests import tagged

from .common import XrmCampaignCase


@tagged("post_install", "-at_install")
class TestClaims(XrmCampaignCase):
    """Claims keep workers apart; a dead worker's claims are taken over at once.

    Two live workers need two committed transactions, which a test cannot
    make: that is covered end-to-end (tests/test_e2e_*.py). Here a claim's
    owner is set by hand to a live backend (ours), a dead one, or an expired lease.
    """

    def setUp(self):
        super().setUp()
        self.campaign = self._create_campaign(self._create_partners(6))
        self.campaign.action_send_now()
        self.Recipient = self.env["xrm.email.campaign.recipient"]

    def _own_backend(self):
        self.env.cr.execute(
            "SELECT pid, backend_start AT TIME ZONE 'UTC' FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        return self.env.cr.fetchone()

    def test_batches_do_not_overlap(self):
        first = self.Recipient._claim_batch(self.campaign.id, 4, 300)
        second = self.Recipient._claim_batch(self.campaign.id, 4, 300)
        self.assertEqual(len(first), 4)
        self.assertEqual(len(second), 2)
        self.assertFalse(first & second)
        self.assertFalse(self.Recipient._claim_batch(self.campaign.id, 4, 300))

    def test_claim_of_live_worker_is_respected_dead_one_taken_over(self):
        pid, started = self._own_backend()
        recipients = self.campaign.recipient_ids
        recipients[:3].write(
            {"claim_pid": pid, "claim_backend_start": started, "claim_expires_at": "2999-01-01 00:00:00"}
        )
        recipients[3:].write(
            {"claim_pid": 999999, "claim_backend_start": started, "claim_expires_at": "2999-01-01 00:00:00"}
        )
        self.assertEqual(self.Recipient._claim_batch(self.campaign.id, 10, 300), recipients[3:])

    def test_expired_lease_is_taken_over(self):
        pid, started = self._own_backend()
        self.campaign.recipient_ids.write(
            {"claim_pid": pid, "claim_backend_start": started, "claim_expires_at": "2000-01-01 00:00:00"}
        )
        self.assertEqual(len(self.Recipient._claim_batch(self.campaign.id, 10, 300)), 6)

    def test_unprocessed_claims_are_handed_back(self):
        batch = self.Recipient._claim_batch(self.campaign.id, 6, 300)
        self.campaign.action_cancel()
        self.campaign.action_resume()
        self.assertFalse(self.Recipient._claim_batch(self.campaign.id, 6, 300), "still ours until handed back")
        batch._release_own_claims()
        self.assertEqual(self.Recipient._claim_batch(self.campaign.id, 6, 300), batch)

    def test_postponed_recipients_wait_for_their_time(self):
        self.campaign.recipient_ids[:2].write({"next_attempt_at": "2999-01-01 00:00:00"})
        self.assertEqual(len(self.Recipient._claim_batch(self.campaign.id, 10, 300)), 4)
        self.assertEqual(self.campaign._count_sendable(), 4, "the postponed two are not sendable now")

    def test_lease_of_a_slow_batch_is_renewed(self):
        batch = self.Recipient._claim_batch(self.campaign.id, 6, 300)
        batch.write({"claim_expires_at": "2000-01-01 00:00:00"})
        batch[:3]._renew_own_claims(300)
        # the renewed half stays with its worker, the expired half is taken over
        self.assertEqual(self.Recipient._claim_batch(self.campaign.id, 6, 300), batch[3:])
