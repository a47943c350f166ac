from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import XrmCampaignCase


@tagged("post_install", "-at_install")
class TestCampaignLinks(XrmCampaignCase):
    def test_add_partners_links_unspecified_and_skips_duplicates(self):
        partners = self._create_partners(4)
        campaign = self._create_campaign()
        self.assertEqual(campaign.with_user(self.user_editor).add_partners(partners[:3].ids), 3)
        self.assertEqual(campaign.add_partners(partners.ids), 1, "only the one not linked yet")
        self.assertEqual(campaign.total_count, 4)
        self.assertEqual(campaign.recipient_ids.partner_id, partners)
        self.assertEqual(
            set(campaign.recipient_ids.mapped("link_type_id")),
            {self.env.ref("xrm_email_campaign.link_type_unspecified")},
        )
        self.assertEqual(campaign.recipient_ids.mapped("email"), partners.mapped("email"))
        self.assertEqual(set(campaign.recipient_ids.mapped("state")), {"pending"})

    def test_duplicate_links_the_same_partners_as_new_unsent_recipients(self):
        partners = self._create_partners(3)
        campaign = self._create_campaign(partners)
        campaign.action_send_now()
        self._run_cron()
        self.assertEqual(campaign.sent_count, 3)
        duplicate = campaign.with_user(self.user_editor).copy()
        self.assertEqual(duplicate.name, f"{campaign.name} (copy)")
        self.assertEqual(duplicate.state, "draft")
        self.assertEqual(duplicate.recipient_ids.partner_id, partners)
        self.assertEqual(set(duplicate.recipient_ids.mapped("state")), {"pending"})
        self.assertEqual(duplicate.recipient_ids.link_type_id.code, "unspecified")
        self.assertFalse(any(duplicate.recipient_ids.mapped("message_id")))
        self.assertEqual(campaign.total_count, 3, "the original keeps its own links")
        self.assertEqual(campaign.copy({"name": "Autumn"}).name, "Autumn")

    def test_sent_link_becomes_campaign_recipient_in_partner_dossier(self):
        partners = self._create_partners(2) | self.env["res.partner"].create({"name": "Nobody"})
        campaign = self._create_campaign(partners)
        campaign.action_send_now()
        self._run_cron()
        reached, not_reached = partners[:2], partners[2]
        for partner in reached:
            self.assertEqual(partner.xrm_campaign_recipient_ids.link_type_id.code, "campaign_recipient")
            self.assertEqual(partner.xrm_campaign_count, 1)
        self.assertEqual(not_reached.xrm_campaign_recipient_ids.link_type_id.code, "unspecified")
        self.assertEqual(not_reached.xrm_campaign_recipient_ids.state, "failed")
        action = not_reached.action_view_xrm_campaign_links()
        self.assertEqual(self.env[action["res_model"]].search(action["domain"]), not_reached.xrm_campaign_recipient_ids)

    def test_add_from_contacts_list_with_selected_partners(self):
        partners = self._create_partners(3)
        campaign = self._create_campaign()
        wizard = (
            self.env["xrm.campaign.add.recipients"]
            .with_user(self.user_editor)
            .with_context(
                active_model="res.partner",
                active_ids=partners[:2].ids,
            )
            .create({"campaign_id": campaign.id})
        )
        self.assertEqual(wizard.partner_ids, partners[:2])
        wizard.action_add()
        self.assertEqual(campaign.recipient_ids.partner_id, partners[:2])

    def test_add_all_partners_matching_a_filter(self):
        self._create_partners(3, prefix="lyonnais", city="Lyon")
        self._create_partners(2, prefix="parisien", city="Paris")
        campaign = self._create_campaign()
        wizard = self.env["xrm.campaign.add.recipients"].create(
            {
                "campaign_id": campaign.id,
                "selection_mode": "filter",
                "partner_domain": "[('city', '=', 'Lyon')]",
            }
        )
        self.assertEqual(wizard.matching_count, 3)
        wizard.action_add()
        self.assertEqual(set(campaign.recipient_ids.partner_id.mapped("city")), {"Lyon"})
        self.assertEqual(campaign.total_count, 3)
        wizard.partner_domain = "[('city', '=',"
        with self.assertRaisesRegex(UserError, "not a valid domain"):
            wizard.action_add()

    def test_no_recipients_added_while_sending(self):
        partners = self._create_partners(2)
        campaign = self._create_campaign(partners[:1])
        campaign.action_send_now()
        with self.assertRaisesRegex(UserError, "cannot be added"):
            campaign.add_partners(partners[1:].ids)

    def test_send_without_recipients_refused(self):
        with self.assertRaisesRegex(UserError, "has no recipients"):
            self._create_campaign().action_send_now()

    def test_status_buttons_open_failed_recipients(self):
        partners = self._create_partners(2) | self.env["res.partner"].create({"name": "Nobody"})
        campaign = self._create_campaign(partners)
        campaign.action_send_now()
        self._run_cron()
        action = campaign.with_context(search_default_filter_failed=1).action_view_recipients()
        self.assertEqual(action["context"], {"search_default_filter_failed": 1})
        links = self.env[action["res_model"]].search(action["domain"] + [("state", "=", "failed")])
        self.assertEqual(links.partner_id.name, "Nobody")
        self.assertEqual(links.error_message, "No e-mail address")
