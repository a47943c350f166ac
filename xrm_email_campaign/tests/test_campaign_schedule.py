from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import XrmCampaignCase

NOW = datetime(2026, 12, 3, 12, 0, 0)


@tagged("post_install", "-at_install")
class TestCampaignSchedule(XrmCampaignCase):
    def setUp(self):
        super().setUp()
        self.partners = self._create_partners(3)
        self.campaign = self._create_campaign(self.partners)

    def _schedule(self, when):
        wizard = (
            self.env["xrm.campaign.schedule"]
            .with_user(self.user_editor)
            .create(
                {
                    "campaign_id": self.campaign.id,
                    "scheduled_at": when,
                }
            )
        )
        wizard.action_schedule()

    def test_picked_up_by_cron_only_once_due(self):
        with freeze_time(NOW):
            self._schedule(NOW + timedelta(hours=2))
            self.assertEqual(self.campaign.state, "scheduled")
            self._run_cron()
            self.assertEqual(self.campaign.state, "scheduled")
            self.assertEqual(self.smtp.handler.snapshot(), [])
        with freeze_time(NOW + timedelta(hours=2, minutes=5)):
            self._run_cron()
        self.assertEqual(self.campaign.state, "done")
        self.assertEqual(self.campaign.started_by_id, self.user_editor, "started by whoever scheduled it")
        self.assertEqual(len(self.smtp.handler.snapshot()), 3 + 1)  # the recipients, then the results mail

    def test_change_time_then_deactivate(self):
        with freeze_time(NOW):
            self._schedule(NOW + timedelta(hours=2))
            self._schedule(NOW + timedelta(hours=5))
            self.assertEqual(self.campaign.scheduled_at, NOW + timedelta(hours=5))
            self.campaign.with_user(self.user_editor).action_unschedule()
            self.assertEqual(self.campaign.state, "draft")
        with freeze_time(NOW + timedelta(hours=6)):
            self._run_cron()
        self.assertEqual(self.campaign.state, "draft")
        self.assertEqual(self.smtp.handler.snapshot(), [])

    def test_time_in_the_past_refused(self):
        with freeze_time(NOW), self.assertRaisesRegex(UserError, "in the future"):
            self._schedule(NOW - timedelta(minutes=1))

    def test_schedule_wakes_the_cron_at_that_time(self):
        cron = self.env.ref("xrm_email_campaign.ir_cron_send_campaigns")
        with freeze_time(NOW):
            self._schedule(NOW + timedelta(hours=2))
        self.assertTrue(
            self.env["ir.cron.trigger"].search(
                [
                    ("cron_id", "=", cron.id),
                    ("call_at", "=", NOW + timedelta(hours=2)),
                ]
            )
        )

    def test_broken_template_at_due_time_goes_back_to_draft_with_a_note(self):
        with freeze_time(NOW):
            self._schedule(NOW + timedelta(hours=2))
        self.campaign.sudo().body_html = "{{ recipient.nope }}"
        with freeze_time(NOW + timedelta(hours=3)):
            self._run_cron()
        self.assertEqual(self.campaign.state, "draft")
        self.assertIn("could not start", self.campaign.message_ids[0].body)
        self.assertEqual(self.smtp.handler.snapshot(), [])

    def test_cron_interval_is_five_minutes(self):
        cron = self.env.ref("xrm_email_campaign.ir_cron_send_campaigns")
        self.assertEqual((cron.interval_number, cron.interval_type, cron.active), (5, "minutes", True))
