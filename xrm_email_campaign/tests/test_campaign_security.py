from psycopg2 import IntegrityError

from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import XrmCampaignCase


@tagged("post_install", "-at_install")
class TestCampaignSecurity(XrmCampaignCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partners = cls._create_partners(2)

    def test_viewer_sees_status_of_anyones_send(self):
        campaign = self._create_campaign(self.partners)
        campaign.with_user(self.user_editor).action_send_now()
        self._run_cron()
        as_viewer = campaign.with_user(self.user_viewer)
        self.assertEqual(
            as_viewer.read(["state", "sent_count", "not_sent_count", "progress", "started_by_id"])[0]["sent_count"],
            2,
        )
        self.assertEqual(as_viewer.started_by_id, self.user_editor)
        self.assertEqual(len(as_viewer.recipient_ids), 2)

    def test_viewer_cannot_cancel_send_or_resume(self):
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        as_viewer = campaign.with_user(self.user_viewer)
        for action in ("action_cancel", "action_resume", "action_send_now", "action_send_test"):
            with self.assertRaisesRegex(AccessError, "need Edit rights"):
                getattr(as_viewer, action)()
        with self.assertRaises(AccessError):
            as_viewer.add_partners(self.partners.ids)
        with self.assertRaises(AccessError):
            as_viewer.write({"name": "renamed"})
        self.assertEqual(campaign.state, "sending")

    def test_editor_creates_and_sends_but_does_not_manage_accounts(self):
        campaign = (
            self.env["xrm.email.campaign"]
            .with_user(self.user_editor)
            .create(
                {
                    "name": "Mine",
                    "account_id": self.account.id,
                    "subject": "s",
                    "body_html": "b",
                }
            )
        )
        campaign.add_partners(self.partners.ids)
        campaign.action_send_now()
        campaign.action_cancel()
        self.assertEqual(campaign.state, "cancelled")
        with self.assertRaises(AccessError):
            self.env["xrm.email.account"].with_user(self.user_editor).create(
                {
                    "name": "Other",
                    "email_from": "o@example.com",
                }
            )
        with self.assertRaises(AccessError):
            self.account.with_user(self.user_editor).write({"email_from": "x@example.com"})

    def test_manager_manages_accounts_and_settings(self):
        account = (
            self.env["xrm.email.account"]
            .with_user(self.user_manager)
            .create(
                {
                    "name": "Sales",
                    "email_from": "sales@example.com",
                }
            )
        )
        self.assertEqual(account.company_id, self.env.company)
        settings = (
            self.env["res.config.settings"]
            .with_user(self.user_manager)
            .sudo()
            .create(
                {
                    "xrm_campaign_batch_size": 20,
                }
            )
        )
        settings.execute()
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("xrm_email_campaign.batch_size"), "20")

    def test_user_without_group_sees_nothing(self):
        plain = self.env["res.users"].create(
            {
                "name": "Plain",
                "login": "xrm_plain",
                "groups_id": [(6, 0, [self.env.ref("base.group_user").id])],
            }
        )
        with self.assertRaises(AccessError):
            self.env["xrm.email.campaign"].with_user(plain).search([])

    def test_multi_company_records_are_separated(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        other_account = self.env["xrm.email.account"].create(
            {
                "name": "Marketing",
                "email_from": "m@other.example.com",
                "company_id": other_company.id,
            }
        )
        other_campaign = self.env["xrm.email.campaign"].create(
            {
                "name": "Other",
                "account_id": other_account.id,
                "company_id": other_company.id,
                "subject": "s",
                "body_html": "b",
            }
        )
        other_campaign.add_partners(self.partners.ids)
        mine = self._create_campaign(self.partners)
        Campaign = self.env["xrm.email.campaign"].with_user(self.user_editor)
        self.assertEqual(Campaign.search([("id", "in", (mine | other_campaign).ids)]), mine)
        self.assertFalse(
            self.env["xrm.email.campaign.recipient"]
            .with_user(self.user_editor)
            .search([("campaign_id", "=", other_campaign.id)])
        )
        with self.assertRaises(AccessError):
            other_campaign.with_user(self.user_editor).read(["name"])

    def test_account_name_unique_per_company(self):
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.cr.savepoint():
            self.env["xrm.email.account"].create({"name": "Marketing", "email_from": "dup@example.com"})
