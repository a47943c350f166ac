from unittest.mock import patch

import odoo
from odoo.tests import TransactionCase

from odoo.addons.mail.tests.common import mail_new_test_user

from .smtp_sink import SmtpSink

BODY = "<p>Dear {{ recipient.name }}, news from {{ sender.name }} in {{ recipient.city or 'your town' }}.</p>"


class XrmCampaignCase(TransactionCase):
    """Accounts, users of each group, and a real SMTP server on 127.0.0.1.

    Odoo's test runner makes ``ir.mail_server`` skip the SMTP conversation;
    these tests lift that switch so every mail really goes to the sink.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.smtp = SmtpSink().start()
        cls.addClassCleanup(cls.smtp.stop)
        cls.startClassPatcher(patch.object(odoo.modules.module, "current_test", False))
        cls.mail_server = cls.env["ir.mail_server"].create(
            {
                "name": "Test SMTP sink",
                "smtp_host": "127.0.0.1",
                "smtp_port": cls.smtp.port,
                "smtp_encryption": "none",
            }
        )
        cls.account = cls.env["xrm.email.account"].create(
            {
                "name": "Marketing",
                "email_from": "campaigns@example.com",
                "mail_server_id": cls.mail_server.id,
            }
        )
        cls.user_viewer = mail_new_test_user(
            cls.env,
            login="xrm_viewer",
            groups="base.group_user,xrm_email_campaign.group_campaign_viewer",
        )
        cls.user_editor = mail_new_test_user(
            cls.env,
            login="xrm_editor",
            groups="base.group_user,xrm_email_campaign.group_campaign_user",
        )
        cls.user_manager = mail_new_test_user(
            cls.env,
            login="xrm_manager",
            groups="base.group_user,xrm_email_campaign.group_campaign_manager",
        )

    def setUp(self):
        super().setUp()
        self.smtp.handler.messages.clear()
        self.smtp.handler.delay = 0.0
        self.smtp.handler.refuse_all = None
        self.smtp.handler.tempfail_enabled = True

    @classmethod
    def _create_partners(cls, count, prefix="contact", **values):
        return cls.env["res.partner"].create(
            [
                {"name": f"{prefix.title()} {index}", "email": f"{prefix}{index}@example.org", **values}
                for index in range(count)
            ]
        )

    def _create_campaign(self, partners=None, subject="Hello {{ recipient.first_name }}", body=BODY, **values):
        campaign = self.env["xrm.email.campaign"].create(
            {
                "name": values.pop("name", "Newsletter"),
                "account_id": self.account.id,
                "subject": subject,
                "body_html": body,
                **values,
            }
        )
        if partners:
            campaign.add_partners(partners.ids)
        return campaign

    def _run_cron(self, max_runs=20):
        """Run the sending cron like ir.cron does, until it has nothing left to do now."""
        Campaign = self.env["xrm.email.campaign"]
        for _run in range(max_runs):
            Campaign._cron_send_campaigns()
            if not Campaign._count_sendable():
                break
        self.env.invalidate_all()

    def _deliveries_to(self, address):
        return self.smtp.handler.to(address)
