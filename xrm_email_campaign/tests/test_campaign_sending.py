from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import XrmCampaignCase


@tagged("post_install", "-at_install")
class TestCampaignSending(XrmCampaignCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partners = cls._create_partners(5, city="Lyon")

    def test_send_test_goes_to_account_sender_only(self):
        campaign = self._create_campaign(self.partners)
        campaign.with_user(self.user_editor).action_send_test()
        messages = self.smtp.handler.snapshot()
        self.assertEqual(len(messages), 1)
        self.assertEqual(messages[0]["rcpt_tos"], ["campaigns@example.com"])
        self.assertTrue(messages[0]["subject"].startswith("[TEST] Hello Contact"))
        self.assertIn("in Lyon", messages[0]["body"])
        rendered_for = [p.name for p in self.partners if p.name in messages[0]["body"]]
        self.assertEqual(len(rendered_for), 1, "rendered from exactly one linked recipient")
        # links and counters unchanged, no results mail, noted in the chatter
        self.assertEqual(campaign.state, "draft")
        self.assertEqual(campaign.pending_count, 5)
        self.assertEqual(set(campaign.recipient_ids.mapped("link_type_id.code")), {"unspecified"})
        self.assertFalse(campaign.results_sent_at)
        self.assertIn("Test e-mail sent to campaigns@example.com", campaign.message_ids[0].body)

    def test_send_test_picks_a_recipient_with_an_address(self):
        no_address = self.env["res.partner"].create({"name": "No Address"})
        campaign = self._create_campaign(no_address)
        with self.assertRaisesRegex(UserError, "no recipient with an e-mail address"):
            campaign.action_send_test()
        campaign.add_partners(self.partners[:1].ids)
        for _attempt in range(5):
            campaign.action_send_test()
        self.assertTrue(all(self.partners[0].name in m["body"] for m in self.smtp.handler.snapshot()))

    def test_send_now_returns_before_sending_then_cron_sends_all(self):
        campaign = self._create_campaign(self.partners)
        cron = self.env.ref("xrm_email_campaign.ir_cron_send_campaigns")
        triggers_before = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        action = campaign.with_user(self.user_editor).action_send_now()
        # nothing is sent inside the request; the cron is woken instead
        self.assertEqual(self.smtp.handler.snapshot(), [])
        self.assertEqual(campaign.state, "sending")
        self.assertEqual(campaign.started_by_id, self.user_editor)
        self.assertTrue(campaign.started_at)
        self.assertGreater(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers_before)
        lanes = self.env["xrm.email.campaign"]._sending_crons()
        self.assertEqual(
            set(self.env["ir.cron.trigger"].search([("cron_id", "in", lanes.ids)]).cron_id.ids),
            set(lanes.ids),
            "every lane is woken, so every free cron worker joins the send",
        )
        # the form opens on the Status tab
        status_view = self.env.ref("xrm_email_campaign.xrm_email_campaign_view_form_status")
        self.assertEqual(action["views"], [(status_view.id, "form")])
        self.assertIn('autofocus="autofocus"', self.env["xrm.email.campaign"].get_view(status_view.id)["arch"])

        self._run_cron()
        self.assertEqual(campaign.state, "done")
        self.assertEqual((campaign.sent_count, campaign.not_sent_count, campaign.progress), (5, 0, 100))
        self.assertTrue(campaign.finished_at)
        for partner in self.partners:
            delivered = self._deliveries_to(partner.email)
            self.assertEqual(len(delivered), 1)
            self.assertEqual(delivered[0]["subject"], f"Hello {partner.name.split()[0]}")
            self.assertEqual(delivered[0]["campaign"], str(campaign.id))
        self.assertEqual(set(campaign.recipient_ids.mapped("link_type_id.code")), {"campaign_recipient"})
        self.assertTrue(all(campaign.recipient_ids.mapped("sent_at")))

    def test_results_mail_once_with_counts_and_reasons(self):
        bad = self.env["res.partner"].create(
            [
                {"name": "Rejected", "email": "reject.me@example.org"},
                {"name": "No Address"},
                {"name": "Broken", "email": "not-an-address"},
            ]
        )
        campaign = self._create_campaign(self.partners | bad)
        campaign.action_send_now()
        self._run_cron()
        self._run_cron()  # a second pass must not send the results again
        results = self._deliveries_to("campaigns@example.com")
        self.assertEqual(len(results), 1)
        self.assertEqual(results[0]["subject"], "E-mail campaign 'Newsletter' finished: 5 sent, 3 not sent")
        self.assertIn("550 5.1.1", results[0]["body"])
        self.assertIn("No e-mail address", results[0]["body"])
        self.assertIn("Invalid e-mail address: not-an-address", results[0]["body"])
        self.assertTrue(campaign.results_sent_at)

    def test_bad_recipients_fail_with_reason_and_others_go_on(self):
        bad = self.env["res.partner"].create(
            [
                {"name": "Rejected", "email": "reject.me@example.org"},
                {"name": "No Address"},
                {"name": "Broken", "email": "not-an-address"},
            ]
        )
        campaign = self._create_campaign(bad | self.partners)
        campaign.action_send_now()
        self._run_cron()
        by_partner = {r.partner_id.name: r for r in campaign.recipient_ids}
        self.assertEqual(by_partner["Rejected"].state, "failed")
        self.assertIn("550 5.1.1", by_partner["Rejected"].error_message)
        self.assertEqual(by_partner["No Address"].error_message, "No e-mail address")
        self.assertEqual(by_partner["Broken"].error_message, "Invalid e-mail address: not-an-address")
        self.assertEqual(set(bad.mapped(lambda p: by_partner[p.name].link_type_id.code)), {"unspecified"})
        self.assertEqual((campaign.sent_count, campaign.failed_count, campaign.state), (5, 3, "done"))

    def test_temporary_refusal_is_retried_with_backoff_not_failed(self):
        flaky = self.env["res.partner"].create({"name": "Flaky", "email": "tempfail@example.org"})
        campaign = self._create_campaign(flaky | self.partners[:1])
        campaign.action_send_now()
        self._run_cron()
        recipient = campaign.recipient_ids.filtered(lambda r: r.partner_id == flaky)
        self.assertEqual(recipient.state, "pending")
        self.assertEqual(recipient.attempt_count, 1)
        self.assertIn("451", recipient.error_message)
        self.assertGreater(recipient.next_attempt_at, recipient.write_date)
        self.assertEqual(campaign.state, "sending", "a postponed recipient keeps the send open")
        # the provider recovers; once the backoff is over the mail goes out
        self.smtp.handler.tempfail_enabled = False
        recipient.next_attempt_at = "2000-01-01 00:00:00"
        self._run_cron()
        self.assertEqual(recipient.state, "sent")
        self.assertEqual(campaign.state, "done")
        self.assertEqual(len(self._deliveries_to("tempfail@example.org")), 1)

    def test_temporary_refusals_give_up_after_max_attempts(self):
        flaky = self.env["res.partner"].create({"name": "Flaky", "email": "tempfail@example.org"})
        campaign = self._create_campaign(flaky)
        campaign.action_send_now()
        recipient = campaign.recipient_ids
        recipient.write({"attempt_count": 4})
        self._run_cron()
        self.assertEqual(recipient.state, "failed")
        self.assertIn("gave up after 5 tries", recipient.error_message)
        self.assertEqual(campaign.state, "done")

    def test_dead_smtp_server_loses_nothing(self):
        campaign = self._create_campaign(self.partners)
        self.mail_server.smtp_port = 1  # nothing listens there
        campaign.action_send_now()
        self.env["xrm.email.campaign"]._cron_send_campaigns()
        self.assertEqual(set(campaign.recipient_ids.mapped("state")), {"pending"})
        self.assertIn("connection error", campaign.recipient_ids[0].error_message)
        self.assertEqual(set(campaign.recipient_ids.mapped("attempt_count")), {0}, "the server's fault, not theirs")
        self.assertTrue(all(campaign.recipient_ids.mapped("next_attempt_at")))
        self.assertEqual(campaign.state, "sending")
        self.mail_server.smtp_port = self.smtp.port
        campaign.recipient_ids.write({"next_attempt_at": "2000-01-01 00:00:00"})
        self._run_cron()
        self.assertEqual(campaign.sent_count, 5)

    def test_retried_recipient_keeps_message_id(self):
        flaky = self.env["res.partner"].create({"name": "Flaky", "email": "tempfail@example.org"})
        campaign = self._create_campaign(flaky)
        campaign.action_send_now()
        self._run_cron()
        self.smtp.handler.tempfail_enabled = False
        campaign.recipient_ids.next_attempt_at = "2000-01-01 00:00:00"
        self._run_cron()
        expected = campaign.recipient_ids.message_id
        self.assertTrue(expected)
        self.assertEqual(self._deliveries_to("tempfail@example.org")[0]["message_id"], expected)
        self.assertIn(f"xrm-campaign-{campaign.id}-{campaign.recipient_ids.id}-", expected)

    def test_broken_template_stops_the_start_naming_recipient(self):
        campaign = self._create_campaign(self.partners[:1], body="<p>{{ recipient.shoe_size }}</p>")
        with self.assertRaisesRegex(UserError, r"recipient Contact 0 <contact0@example.org>.*shoe_size"):
            campaign.action_send_now()
        self.assertEqual(campaign.state, "draft")
        campaign.body_html = "<p>{% for %}</p>"
        with self.assertRaisesRegex(UserError, "body template.*line 1"):
            campaign.action_send_now()
        self.assertEqual(self.smtp.handler.snapshot(), [])

    def test_subject_with_line_break_refused(self):
        with self.assertRaisesRegex(Exception, "one line"):
            self._create_campaign(self.partners[:1], subject="Hi\nBcc: x@example.org")

    def test_cancel_stops_and_resume_never_resends(self):
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        first = campaign.recipient_ids[:2]
        batch = self.env["xrm.email.campaign.recipient"]._claim_batch(campaign.id, 2, 300)
        self.assertEqual(batch, first)
        sent = campaign._send_batch_over(campaign._connect_smtp(), batch)
        self.assertEqual(sent, 2)
        campaign.with_user(self.user_editor).action_cancel()
        self.assertEqual(campaign.state, "cancelled")
        self.assertEqual(campaign.cancelled_count, 3)
        self._run_cron()
        self.assertEqual(len(self.smtp.handler.snapshot()), 2, "nothing sent after the cancel")
        self.assertFalse(self._deliveries_to("campaigns@example.com"), "no results mail for a cancelled send")

        campaign.with_user(self.user_editor).action_resume()
        self.assertEqual(campaign.state, "sending")
        self._run_cron()
        self.assertEqual(campaign.state, "done")
        for partner in self.partners:
            self.assertEqual(len(self._deliveries_to(partner.email)), 1, partner.email)
        self.assertEqual(len(self._deliveries_to("campaigns@example.com")), 1)

    def test_cancel_takes_effect_within_one_message(self):
        campaign = self._create_campaign(self.partners)
        campaign.action_send_now()
        batch = self.env["xrm.email.campaign.recipient"]._claim_batch(campaign.id, 5, 300)
        smtp_session = campaign._connect_smtp()
        self.assertEqual(campaign._send_batch_over(smtp_session, batch[:1]), 1)
        campaign.action_cancel()
        self.assertEqual(campaign._send_batch_over(smtp_session, batch[1:]), 0)
        self.assertEqual(len(self.smtp.handler.snapshot()), 1)

    def test_sending_goes_through_the_accounts_mail_server(self):
        other_sink_server = self.env["ir.mail_server"].create(
            {
                "name": "Unreachable",
                "smtp_host": "127.0.0.1",
                "smtp_port": 1,
                "smtp_encryption": "none",
            }
        )
        self.account.mail_server_id = other_sink_server
        campaign = self._create_campaign(self.partners[:1])
        with self.assertRaisesRegex(UserError, "could not be sent"):
            campaign.action_send_test()
        self.assertEqual(self.smtp.handler.snapshot(), [])

    def test_account_without_server_uses_odoos_default_server(self):
        self.account.mail_server_id = False
        self.assertEqual(self.env["ir.mail_server"].search([]), self.mail_server, "Odoo's only, hence default, server")
        campaign = self._create_campaign(self.partners[:2])
        campaign.action_send_now()
        self._run_cron()
        self.assertEqual(campaign.sent_count, 2)
        self.assertEqual(len(self._deliveries_to(self.partners[0].email)), 1)

    def test_retry_failed_temporary_only_then_all_never_resends_sent(self):
        flaky = self.env["res.partner"].create({"name": "Flaky", "email": "tempfail@example.org"})
        rejected = self.env["res.partner"].create({"name": "Rejected", "email": "reject@example.org"})
        campaign = self._create_campaign(self.partners[:2] | flaky | rejected)
        campaign.action_send_now()
        campaign.recipient_ids.filtered(lambda r: r.partner_id == flaky).attempt_count = 4
        self._run_cron()
        by_partner = {r.partner_id: r for r in campaign.recipient_ids}
        self.assertEqual((by_partner[flaky].state, by_partner[flaky].failure_kind), ("failed", "temporary"))
        self.assertEqual((by_partner[rejected].state, by_partner[rejected].failure_kind), ("failed", "permanent"))
        self.assertEqual(campaign.state, "done")
        with self.assertRaisesRegex(AccessError, "retry failed recipients"):
            campaign.with_user(self.user_viewer).action_retry_failed()

        self.smtp.handler.tempfail_enabled = False
        self.assertEqual(campaign.with_user(self.user_editor).action_retry_failed(temporary_only=True), 1)
        self.assertEqual((by_partner[flaky].state, by_partner[flaky].attempt_count), ("pending", 0))
        self.assertEqual(by_partner[rejected].state, "failed", "a permanent failure is not retried by default")
        self.assertEqual(campaign.state, "sending")
        self._run_cron()
        self.assertEqual((by_partner[flaky].state, campaign.state), ("sent", "done"))

        retried = campaign.with_user(self.user_editor).with_context(retry_temporary_only=False).action_retry_failed()
        self.assertEqual(retried, 1)
        self._run_cron()
        self.assertEqual(by_partner[rejected].state, "failed")
        self.assertEqual(len(self._deliveries_to("tempfail@example.org")), 1)
        for partner in self.partners[:2]:
            self.assertEqual(len(self._deliveries_to(partner.email)), 1, "retry never re-sends a sent recipient")
        self.assertEqual(len(self._deliveries_to("campaigns@example.com")), 3, "one results mail per finished send")
        self.assertEqual(campaign.with_user(self.user_editor).action_retry_failed(temporary_only=True), 0)

    def test_retry_failed_refused_on_a_cancelled_or_draft_send(self):
        campaign = self._create_campaign(self.partners[:1])
        with self.assertRaisesRegex(UserError, "once campaign 'Newsletter' has been sent"):
            campaign.action_retry_failed()

    def test_sending_diagnostics_readable_by_a_viewer(self):
        lanes = self.env["xrm.email.campaign"]._sending_crons()
        self.assertEqual(len(lanes), 4)
        lanes[1:].active = False
        Campaign = self.env["xrm.email.campaign"].with_user(self.user_viewer)
        self.assertIs(Campaign.get_sending_diagnostics()["cron_active"], True, "one active lane is enough")
        lanes.active = False
        diagnostics = Campaign.get_sending_diagnostics()
        self.assertIs(diagnostics["cron_active"], False)
        self.assertTrue(diagnostics["server_time"])
        outsider = mail_new_test_user(self.env, login="outsider", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["xrm.email.campaign"].with_user(outsider).get_sending_diagnostics()
