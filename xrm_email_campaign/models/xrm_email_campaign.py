import logging
import threading
import time
from datetime import datetime, timedelta
from email.utils import parseaddr

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL
from odoo.tools.mail import email_domain_extract, email_normalize, formataddr, html2plaintext

from ..tools import delivery, mime, report
from ..tools.rendering import TemplateRenderError, compiled_template, recipient_context
from .batch_send import BatchSend
from .xrm_email_campaign_recipient import execute_retrying, in_real_worker

_logger = logging.getLogger(__name__)

# How many recipients are rendered when a send starts, to refuse a broken
# template before anything is sent (the context has the same keys for every
# recipient, so a sample finds undefined variables as well as all of them).
TEMPLATE_CHECK_SAMPLE = 1000

# The sending cron comes as several ir.cron records ("lanes") running the same
# code: Odoo runs one record in one worker at a time, so lanes are what lets
# several cron workers -- of one server or of several servers on the same
# database -- send at once. The recipient claims keep them apart.
SENDING_LANES = (
    "xrm_email_campaign.ir_cron_send_campaigns",
    "xrm_email_campaign.ir_cron_send_campaigns_lane_2",
    "xrm_email_campaign.ir_cron_send_campaigns_lane_3",
    "xrm_email_campaign.ir_cron_send_campaigns_lane_4",
)


class XrmEmailCampaign(models.Model):
    """An e-mail campaign: a templated mail sent to every linked recipient.

    Sending never happens in the user's request: "Send now" and the schedule
    only change the state and wake the cron ``ir_cron_send_campaigns``, whose
    runs claim recipients in small batches, send them over one SMTP session
    per batch and commit each outcome right after the server accepted the
    mail. Whatever stops a run (a kill, a restart, a cancel), the next run
    carries on with what is still pending.
    """

    _name = "xrm.email.campaign"
    _description = "E-mail Campaign"
    _inherit = ["mail.thread"]
    _order = "id desc"

    name = fields.Char(required=True, tracking=True)
    account_id = fields.Many2one(
        "xrm.email.account",
        "E-mail Account",
        required=True,
        tracking=True,
        check_company=True,
        help="The account the campaign is sent with; its sender receives the test and results e-mails.",
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    email_from = fields.Char(related="account_id.email_from", string="Sender")
    subject = fields.Char(required=True, help="A jinja2 template, e.g. Hello {{ recipient.first_name }}")
    body_html = fields.Text(
        "Body",
        help="An HTML jinja2 template. Variables: recipient.name, .email, .first_name, .last_name, .title, "
        ".company_name, .street, .zip, .city, .country, .phone, .lang; campaign.name; sender.name, sender.email.",
    )
    recipient_ids = fields.One2many("xrm.email.campaign.recipient", "campaign_id", "Recipients")
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("scheduled", "Scheduled"),
            ("sending", "Sending"),
            ("done", "Done"),
            ("cancelled", "Cancelled"),
        ],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
        copy=False,
    )
    scheduled_at = fields.Datetime("Send at", copy=False, tracking=True)
    started_by_id = fields.Many2one("res.users", "Started by", readonly=True, copy=False)
    started_at = fields.Datetime(readonly=True, copy=False)
    finished_at = fields.Datetime(readonly=True, copy=False)
    results_sent_at = fields.Datetime(
        "Results e-mail sent",
        readonly=True,
        copy=False,
        help="Set once the results e-mail went out, so it is sent once even across a crash.",
    )
    total_count = fields.Integer("Total recipients", compute="_compute_counts")
    sent_count = fields.Integer("Sent", compute="_compute_counts")
    failed_count = fields.Integer("Failed", compute="_compute_counts")
    cancelled_count = fields.Integer("Cancelled", compute="_compute_counts")
    pending_count = fields.Integer("Pending", compute="_compute_counts")
    not_sent_count = fields.Integer("Not sent", compute="_compute_counts")
    progress = fields.Integer(compute="_compute_counts", help="Share of recipients processed (sent or failed).")

    # -- computes -------------------------------------------------------------

    @api.depends("recipient_ids.state")
    def _compute_counts(self):
        """One grouped query for all campaigns: the Status tab of a
        100,000-recipient campaign must open fast, so no recordset is loaded."""
        counts = {}
        if self.ids:
            self.env["xrm.email.campaign.recipient"].flush_model(["campaign_id", "state"])
            self.env.cr.execute(
                SQL(
                    """SELECT campaign_id, state, count(*) FROM xrm_email_campaign_recipient
                    WHERE campaign_id = ANY(%s) GROUP BY campaign_id, state""",
                    self.ids,
                )
            )
            for campaign_id, state, count in self.env.cr.fetchall():
                counts.setdefault(campaign_id, {})[state] = count
        for campaign in self:
            by_state = counts.get(campaign.id, {})
            campaign.sent_count = by_state.get("sent", 0)
            campaign.failed_count = by_state.get("failed", 0)
            campaign.cancelled_count = by_state.get("cancelled", 0)
            campaign.pending_count = by_state.get("pending", 0)
            campaign.total_count = sum(by_state.values())
            campaign.not_sent_count = campaign.total_count - campaign.sent_count
            campaign.progress = report.progress_percent(
                campaign.sent_count + campaign.failed_count, campaign.total_count
            )

    # -- constraints ----------------------------------------------------------

    @api.constrains("subject")
    def _check_subject_one_line(self):
        for campaign in self:
            if campaign.subject and ("\r" in campaign.subject or "\n" in campaign.subject):
                raise ValidationError(self.env._("The subject of campaign '%s' must be one line.", campaign.name))

    # -- duplicate ------------------------------------------------------------

    def copy_data(self, default=None):
        values = super().copy_data(default)
        return [
            dict(vals, name=self.env._("%s (copy)", campaign.name)) if "name" not in (default or {}) else vals
            for campaign, vals in zip(self, values, strict=True)
        ]

    def copy(self, default=None):
        """A copy is sent to the same people: its recipients are linked again, as new
        links (pending, unspecified), in one statement per campaign whatever their number."""
        copies = super().copy(default)
        Recipient = self.env["xrm.email.campaign.recipient"]
        Recipient.flush_model(["campaign_id", "partner_id"])
        for original, duplicate in zip(self, copies, strict=True):
            self.env.cr.execute(
                SQL("SELECT partner_id FROM xrm_email_campaign_recipient WHERE campaign_id = %s", original.id)
            )
            Recipient._link_partners(duplicate, [row[0] for row in self.env.cr.fetchall()])
        return copies

    # -- buttons --------------------------------------------------------------

    def action_send_test(self):
        """Render the mail for a random linked recipient and send it to the account's sender only."""
        self._check_edit_rights(self.env._("send a test e-mail"))
        for campaign in self:
            recipient = campaign._random_recipient_with_address()
            template = campaign._compile_template()
            constants = campaign._sending_constants()
            subject, body = campaign._render_row(template, recipient._delivery_rows()[0], constants)
            smtp_session = None
            try:
                smtp_session = campaign._connect_smtp()
                campaign._send_message(
                    smtp_session,
                    constants,
                    campaign.account_id.email_from,
                    self.env._("[TEST] %s", subject),
                    body,
                )
            except UserError:
                raise
            except Exception as error:  # whatever failed, the user sees it with its reason
                raise UserError(
                    self.env._(
                        "The test e-mail of campaign '%(campaign)s' could not be sent to %(sender)s: %(reason)s",
                        campaign=campaign.name,
                        sender=campaign.account_id.email_from,
                        reason=delivery.classify_smtp_error(error).reason,
                    )
                ) from error
            finally:
                campaign._close_smtp(smtp_session)
            campaign._message_log(
                body=self.env._(
                    "Test e-mail sent to %(sender)s, rendered for %(recipient)s.",
                    sender=campaign.account_id.email_from,
                    recipient=recipient.display_name,
                )
            )
        return True

    def action_send_now(self):
        """Start sending in the background and open the Status tab; returns at once."""
        self._check_edit_rights(self.env._("send a campaign"))
        for campaign in self:
            campaign._check_can_start()
            campaign._start_sending()
        return self._action_open_status_tab()

    def action_schedule(self):
        """Send later: the cron picks the campaign up once ``scheduled_at`` has passed."""
        self._check_edit_rights(self.env._("schedule a campaign"))
        for campaign in self:
            if not campaign.scheduled_at or campaign.scheduled_at <= fields.Datetime.now():
                raise UserError(self.env._("Set a sending time in the future for campaign '%s'.", campaign.name))
            campaign._check_can_start(allowed_states=("draft", "scheduled"))
            campaign.write({"state": "scheduled", "started_by_id": self.env.uid})
            self._wake_sending_crons(campaign.scheduled_at)
        return True

    def action_unschedule(self):
        """Deactivate a delayed send that has not started: back to draft."""
        self._check_edit_rights(self.env._("deactivate a delayed send"))
        not_scheduled = self.filtered(lambda c: c.state != "scheduled")
        if not_scheduled:
            raise UserError(
                self.env._(
                    "Only a scheduled campaign that has not started can be deactivated: %s",
                    ", ".join(not_scheduled.mapped("name")),
                )
            )
        self.write({"state": "draft"})
        return True

    def action_open_schedule_wizard(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Send later"),
            "res_model": "xrm.campaign.schedule",
            "view_mode": "form",
            "target": "new",
            "context": {"default_campaign_id": self.id, "default_scheduled_at": self.scheduled_at},
        }

    def action_cancel(self):
        """Stop a running send: workers check the state before every message."""
        self._check_edit_rights(self.env._("cancel a send"))
        for campaign in self.filtered(lambda c: c.state == "sending"):
            self.env.cr.execute(
                SQL(
                    """UPDATE xrm_email_campaign_recipient SET state = 'cancelled', next_attempt_at = NULL
                    WHERE campaign_id = %s AND state = 'pending'""",
                    campaign.id,
                )
            )
            self.env["xrm.email.campaign.recipient"].invalidate_model(["state"])
            campaign.write({"state": "cancelled", "finished_at": fields.Datetime.now()})
            campaign._message_log(body=self.env._("Sending cancelled by %s.", self.env.user.name))
        return True

    def action_resume(self):
        """Continue a cancelled or interrupted send with the recipients not sent yet."""
        self._check_edit_rights(self.env._("resume a send"))
        for campaign in self:
            if campaign.state not in ("cancelled", "sending"):
                raise UserError(
                    self.env._("Only a cancelled or interrupted send can be resumed (campaign '%s').", campaign.name)
                )
            self.env.cr.execute(
                SQL(
                    """UPDATE xrm_email_campaign_recipient SET state = 'pending'
                    WHERE campaign_id = %s AND state = 'cancelled'""",
                    campaign.id,
                )
            )
            self.env["xrm.email.campaign.recipient"].invalidate_model(["state"])
            campaign.write({"state": "sending", "finished_at": False, "results_sent_at": False})
            campaign._message_log(body=self.env._("Sending resumed by %s.", self.env.user.name))
        self._wake_sending_crons()
        return self._action_open_status_tab()

    def action_retry_failed(self, temporary_only=None):
        """Send again to the failed recipients: only those whose failure was temporary
        (``temporary_only``, the default; a button passes it in the context as
        ``retry_temporary_only``), or all of them. Only failed links go back to
        pending, so nobody already sent is sent again. Returns how many."""
        self._check_edit_rights(self.env._("retry failed recipients"))
        if temporary_only is None:
            temporary_only = self.env.context.get("retry_temporary_only", True)
        retried = 0
        for campaign in self:
            if campaign.state not in ("done", "sending"):
                raise UserError(
                    self.env._(
                        "Failed recipients can be retried once campaign '%s' has been sent "
                        "(a cancelled send is resumed first).",
                        campaign.name,
                    )
                )
            self.env["xrm.email.campaign.recipient"].flush_model()
            self.env.cr.execute(
                SQL(
                    """UPDATE xrm_email_campaign_recipient
                      SET state = 'pending', attempt_count = 0, next_attempt_at = NULL,
                          error_message = NULL, failure_kind = NULL, write_date = now() AT TIME ZONE 'UTC'
                    WHERE campaign_id = %s AND state = 'failed' %s""",
                    campaign.id,
                    SQL("AND failure_kind = 'temporary'") if temporary_only else SQL(""),
                )
            )
            count = self.env.cr.rowcount
            self.env["xrm.email.campaign.recipient"].invalidate_model()
            if not count:
                continue
            retried += count
            campaign.write({"state": "sending", "finished_at": False, "results_sent_at": False})
            campaign._message_log(
                body=self.env._(
                    "%(user)s retried %(count)s failed recipients (%(which)s).",
                    user=self.env.user.name,
                    count=count,
                    which=self.env._("temporary failures") if temporary_only else self.env._("all failures"),
                )
            )
        if retried:
            self._wake_sending_crons()
        return retried

    @api.model
    def get_sending_diagnostics(self):
        """What a person watching sends needs to tell why one stalled, for anyone who may
        read campaigns: whether the sending cron is active and when it last ran (ir.cron
        itself is readable by administrators only)."""
        self.check_access("read")
        lanes = self._sending_crons()
        active = lanes.filtered("active")
        lastcall = max(lanes.mapped("lastcall"), default=False, key=lambda moment: moment or datetime.min)
        nextcall = min(active.mapped("nextcall"), default=False)
        return {
            "cron_active": bool(active),
            "cron_lastcall": fields.Datetime.to_string(lastcall) if lastcall else False,
            "cron_nextcall": fields.Datetime.to_string(nextcall) if nextcall else False,
            "server_time": fields.Datetime.to_string(fields.Datetime.now()),
        }

    def action_open_add_recipients(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Add recipients"),
            "res_model": "xrm.campaign.add.recipients",
            "view_mode": "form",
            "target": "new",
            "context": {"default_campaign_id": self.id},
        }

    def action_view_recipients(self):
        """The campaign's links, filtered as the clicked button says (sent, failed, ...)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Recipients of %s", self.name),
            "res_model": "xrm.email.campaign.recipient",
            "view_mode": "list,form",
            "domain": [("campaign_id", "=", self.id)],
            "context": {key: value for key, value in self.env.context.items() if key.startswith("search_default_")},
        }

    # -- business methods -------------------------------------------------------

    def add_partners(self, partner_ids):
        """Link partners as recipients (link type 'unspecified'), skipping ones already linked.

        One INSERT ... SELECT for the whole list, so 100,000 partners take
        seconds, not the minutes of creating records one by one.
        """
        self.ensure_one()
        self._check_edit_rights(self.env._("add recipients"))
        self.check_access("write")
        if self.state in ("sending", "done"):
            raise UserError(
                self.env._(
                    "Recipients cannot be added to campaign '%(campaign)s' while it is %(state)s.",
                    campaign=self.name,
                    state=dict(self._fields["state"].selection)[self.state],
                )
            )
        partners = self.env["res.partner"].browse(partner_ids)
        partners.check_access("read")
        return self.env["xrm.email.campaign.recipient"]._link_partners(self, partner_ids)

    def _check_edit_rights(self, what):
        if not self.env.user.has_group("xrm_email_campaign.group_campaign_user"):
            raise AccessError(
                self.env._(
                    "You need Edit rights on e-mail campaigns (group 'E-mail Campaigns / User (Edit)') "
                    "to %(what)s. Please contact your administrator.",
                    what=what,
                )
            )
        self.check_access("write")

    def _check_can_start(self, allowed_states=("draft", "scheduled")):
        self.ensure_one()
        if self.state not in allowed_states:
            raise UserError(self.env._("Campaign '%s' has already been sent or is being sent.", self.name))
        # not ``self.recipient_ids``: that would load every id of a 100,000-recipient campaign
        if not self.env["xrm.email.campaign.recipient"].search_count([("campaign_id", "=", self.id)], limit=1):
            raise UserError(self.env._("Campaign '%s' has no recipients.", self.name))
        self._check_templates()

    def _check_templates(self):
        """Render the templates for a sample of recipients; a broken template stops the start."""
        template = self._compile_template()
        recipients = self.env["xrm.email.campaign.recipient"].search(
            [("campaign_id", "=", self.id), ("state", "=", "pending")],
            limit=TEMPLATE_CHECK_SAMPLE,
        )
        constants = self._sending_constants()
        for row in recipients._delivery_rows():
            self._render_row(template, row, constants)

    def _compile_template(self):
        try:
            return compiled_template(self.subject or "", self.body_html or "", html_to_text=html2plaintext)
        except TemplateRenderError as error:
            raise UserError(
                self.env._("Campaign '%(campaign)s': %(error)s", campaign=self.name, error=error)
            ) from error

    def _render_row(self, template, row, constants, with_text=False):
        """Render one recipient's mail from plain values (see ``_delivery_rows``):
        ``(subject, body_html)``, plus the plain-text body ``with_text``."""
        context = recipient_context(
            row["values"],
            campaign_name=constants["campaign_name"],
            sender_name=constants["sender_name"],
            sender_email=constants["sender_email"],
        )
        try:
            if with_text:
                return template.render_mail(context, recipient_label=row["label"])
            return template.render(context, recipient_label=row["label"])
        except TemplateRenderError as error:
            raise UserError(
                self.env._("Campaign '%(campaign)s': %(error)s", campaign=constants["campaign_name"], error=error)
            ) from error

    def _sending_constants(self):
        """What every mail of a batch shares, read once as plain values: the send loop
        commits after each mail, which empties the ORM cache, so it must not read records."""
        account = self.account_id
        mail_server = self.env["ir.mail_server"].sudo()
        return {
            "campaign_id": self.id,
            "campaign_name": self.name,
            "sender_name": account.name,
            "sender_email": account.email_from,
            "email_from": formataddr((account.name, account.email_from)),
            "mail_server_id": account.mail_server_id.id or None,
            "bounce_address": mail_server._get_default_bounce_address() or account.email_from,
            # Odoo only compares the sender with this address; without a configured default-from it
            # would look the default up again for every mail, which costs more than building the mail.
            "notifications_email": mail_server._get_default_from_address() or account.email_from,
            "database_uuid": self.env["ir.config_parameter"].sudo().get_param("database.uuid"),
            "domain": email_domain_extract(account.email_from),
            "sent_link_type_id": self.env.ref("xrm_email_campaign.link_type_campaign_recipient").id,
        }

    def _random_recipient_with_address(self):
        self.ensure_one()
        self.env["xrm.email.campaign.recipient"].flush_model()
        self.env.cr.execute(
            SQL(
                # PostgreSQL picks: a 100,000-recipient campaign sends one id over, not all of them
                """SELECT id FROM xrm_email_campaign_recipient
                WHERE campaign_id = %s AND email IS NOT NULL AND email != ''
                ORDER BY random() LIMIT 1""",
                self.id,
            )
        )
        row = self.env.cr.fetchone()
        if not row:
            raise UserError(
                self.env._("Campaign '%s' has no recipient with an e-mail address to render the test from.", self.name)
            )
        return self.env["xrm.email.campaign.recipient"].browse(row[0])

    def _start_sending(self, started_by=None):
        self.write(
            {
                "state": "sending",
                "started_by_id": (started_by or self.env.user).id,
                "started_at": fields.Datetime.now(),
                "finished_at": False,
                "results_sent_at": False,
            }
        )
        self._message_log(body=self.env._("Sending started by %s.", (started_by or self.env.user).name))
        self._wake_sending_crons()

    def _action_open_status_tab(self):
        action = {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "view_mode": "form",
            "views": [(self.env.ref("xrm_email_campaign.xrm_email_campaign_view_form_status").id, "form")],
            "target": "current",
        }
        if len(self) == 1:
            action["res_id"] = self.id
        return action

    def _sending_cron(self):
        return self.env.ref("xrm_email_campaign.ir_cron_send_campaigns").sudo()

    def _sending_crons(self):
        """Every lane of the sending cron (see ``SENDING_LANES``), active or not."""
        lanes = self.env["ir.cron"].sudo()
        for xmlid in SENDING_LANES:
            lanes |= self.env.ref(xmlid, raise_if_not_found=False) or self.env["ir.cron"]
        return lanes.sudo()

    def _wake_sending_crons(self, at=None):
        """Wake every active lane, so every cron worker free to send joins in."""
        for lane in self._sending_crons().filtered("active"):
            lane._trigger(at)

    # -- SMTP -------------------------------------------------------------------

    def _connect_smtp(self):
        """One SMTP session through Odoo's mail stack: the account's server or Odoo's default."""
        account = self.account_id
        return (
            self.env["ir.mail_server"]
            .sudo()
            .connect(
                mail_server_id=account.mail_server_id.id or None,
                smtp_from=account.email_from,
            )
        )

    @staticmethod
    def _close_smtp(smtp_session):
        if smtp_session is None:
            return
        try:
            smtp_session.quit()
        except Exception:  # the session may already be gone; there is nothing left to save
            _logger.debug("SMTP session already closed", exc_info=True)

    def _send_message(self, smtp_session, constants, email_to, subject, body, message_id=None):
        # Handing Odoo the batch's bounce and notification addresses saves it looking them up per mail.
        mail_server = (
            self.env["ir.mail_server"]
            .sudo()
            .with_context(
                domain_bounce_address=constants["bounce_address"],
                domain_notifications_email=constants["notifications_email"],
            )
        )
        message = mail_server.build_email(
            email_from=constants["email_from"],
            email_to=[email_to],
            subject=subject,
            body=body,
            subtype="html",
            message_id=message_id,
            headers={"X-XRM-Campaign": str(constants["campaign_id"])},
        )
        return mail_server.send_email(
            message,
            mail_server_id=constants["mail_server_id"],
            smtp_session=smtp_session,
        )

    # -- the sending engine (cron) ----------------------------------------------

    @api.model
    def _cron_send_campaigns(self):
        """Cron entry point: start due scheduled sends, send for a bounded time, report progress.

        One run stays well inside Odoo's cron limits (``limit_time_real``,
        ``limit_time_cpu``; ir.cron calls a run up to 10 times in a row while
        it reports remaining work), and wakes the cron again through
        ``_trigger()`` rather than waiting for the cron thread's next poll.
        """
        params = self._sending_params()
        self._start_due_campaigns()
        started = time.monotonic()
        deadline = started + params["run_seconds"]
        done = 0
        for campaign in self.search([("state", "=", "sending")], order="started_at, id"):
            while time.monotonic() < deadline:
                sent = campaign._send_one_batch(params["batch_size"], params["lease_seconds"], deadline)
                if not sent:
                    break
                done += sent
            campaign._finish_if_complete()
        self._finish_results_mails()
        remaining = self._count_sendable()
        if done:
            _logger.info(
                "Processed %s campaign mails (sent or failed) in %.1f s, %s left",
                done,
                time.monotonic() - started,
                remaining,
            )
        self._sending_cron()._notify_progress(done=done, remaining=remaining)
        if remaining and done:
            self._wake_sending_crons()
        self._trigger_next_retry()

    def _sending_params(self):
        get_param = self.env["ir.config_parameter"].sudo().get_param
        return {
            "batch_size": max(1, int(get_param("xrm_email_campaign.batch_size", 50))),
            "run_seconds": max(1, float(get_param("xrm_email_campaign.run_seconds", 4))),
            "lease_seconds": max(30, int(get_param("xrm_email_campaign.lease_seconds", 300))),
        }

    def _start_due_campaigns(self):
        due = self.search([("state", "=", "scheduled"), ("scheduled_at", "<=", fields.Datetime.now())])
        for campaign in due:
            try:
                campaign._check_templates()
            except UserError as error:
                campaign.write({"state": "draft"})
                campaign._message_log(body=self.env._("The delayed send could not start: %s", error))
                continue
            campaign._start_sending(started_by=campaign.started_by_id)
        if due:
            self._commit()

    def _send_one_batch(self, batch_size, lease_seconds, deadline=None):
        """Claim a batch, send it over one SMTP session; return how many were processed.

        Sends until ``deadline`` (``time.monotonic()``) at most, so that one cron run
        stays bounded even when a rate limit or a slow server makes a batch slow.
        """
        self.ensure_one()
        pause_end = self.account_id.sudo()._running_pause_end()
        if pause_end:  # the provider asked to back off: come back when the pause is over
            self._wake_sending_crons(pause_end)
            return 0
        Recipient = self.env["xrm.email.campaign.recipient"].sudo()
        batch = Recipient._claim_batch(self.id, batch_size, lease_seconds)
        self._commit()  # the claim must be visible to other workers before we send
        if not batch:
            return 0
        try:
            smtp_session = self._connect_smtp()
        except Exception as error:  # noqa: BLE001 -- any connect failure is a temporary one for the batch
            self._postpone_all(batch, delivery.classify_smtp_error(error).reason)
            return 0
        try:
            return self._send_batch_over(smtp_session, batch, lease_seconds, deadline)
        finally:
            batch._release_own_claims()
            self._commit()
            self._close_smtp(smtp_session)

    def _send_batch_over(self, smtp_session, batch, lease_seconds=300, deadline=None):
        """Send a claimed batch over one SMTP session; return how many recipients were processed.

        The SMTP conversation of each mail runs in a pipeline thread while the outcome
        of the previous one is committed here (see ``tools/smtp_pipeline``): a mail is
        accepted by the server only once the outcome before it is durable. With a rate
        limit each mail first waits for its slot (``tools/throttle``), with nothing in
        flight, so the whole SMTP transaction of a mail happens inside its slot.
        """
        if self._is_cancelled():
            return 0
        loop = BatchSend(self, smtp_session, batch, lease_seconds, deadline)
        try:
            return loop.run()
        finally:
            loop.close()

    def _prepare_delivery(self, template, row, constants, batch_mail):
        """One recipient's mail as bytes (``email``, ``data``, ``message_id``), or the
        ``failure`` that keeps it from being sent at all."""
        email = email_normalize(row["email"] or "")
        if not row["email"]:
            return {"failure": self.env._("No e-mail address")}
        if not email:
            return {"failure": self.env._("Invalid e-mail address: %s", row["email"])}
        if template is None:
            return {"failure": self.env._("The campaign template does not compile")}
        try:
            subject, body, text = self._render_row(template, row, constants, with_text=True)
        except UserError as error:
            return {"failure": str(error)}
        message_id = report.campaign_message_id(
            constants["database_uuid"], constants["campaign_id"], row["id"], constants["domain"]
        )
        data = mime.campaign_mail(
            batch_mail["headers"], mime.address(row["name"], email), subject, message_id, body, text
        )
        return {"email": email, "data": data, "message_id": message_id}

    def _prepare_batch_mail(self, smtp_session, constants):
        """What every mail of a batch shares, through Odoo's mail stack once per batch:
        ``build_email`` and ``_prepare_email_message`` decide the envelope sender and
        the From header (bounce address, from-filter, encapsulation) as for any mail."""
        mail_server = (
            self.env["ir.mail_server"]
            .sudo()
            .with_context(
                domain_bounce_address=constants["bounce_address"],
                domain_notifications_email=constants["notifications_email"],
            )
        )
        prototype = mail_server.build_email(
            email_from=constants["email_from"],
            email_to=[constants["sender_email"]],
            subject="",
            body="",
            subtype="html",
        )
        smtp_from, _to, prototype = mail_server._prepare_email_message(prototype, smtp_session)
        return {
            "smtp_from": smtp_from,
            "headers": [
                f"From: {mime.address(*parseaddr(str(prototype['From'])))}",
                f"Reply-To: {mime.address(*parseaddr(str(prototype['Reply-To'])))}",
                f"X-XRM-Campaign: {constants['campaign_id']}",
            ],
        }

    def _record_failure(self, recipient, previous_attempts, failure):
        """Record a failed try; return the campaign's state (see ``BatchSend._settle``)."""
        if failure.permanent:
            return recipient._mark_failed(failure.reason)
        attempt = previous_attempts + 1
        if delivery.gives_up(attempt):
            return recipient._mark_failed(
                self.env._("%(reason)s (gave up after %(count)s tries)", reason=failure.reason, count=attempt),
                temporary=True,
            )
        retry_at = fields.Datetime.now() + timedelta(seconds=delivery.retry_delay(attempt))
        return recipient._postpone(failure.reason, attempt, retry_at)

    def _postpone_all(self, batch, reason):
        """The SMTP server could not be reached: not the recipients' fault, so no try is
        counted against them and nothing is given up; the batch waits and is tried again."""
        retry_at = fields.Datetime.now() + timedelta(seconds=delivery.FIRST_RETRY_DELAY)
        batch._wait_for_server(reason, retry_at)
        self._commit()

    def _compile_template_or_none(self):
        try:
            return self._compile_template()
        except UserError:
            return None

    def _is_cancelled(self):
        self.flush_recordset(["state"])
        self.env.cr.execute(SQL("SELECT state FROM xrm_email_campaign WHERE id = %s", self.id))
        row = self.env.cr.fetchone()
        return not row or row[0] != "sending"

    def _count_sendable(self):
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """SELECT count(*) FROM xrm_email_campaign_recipient r
                 JOIN xrm_email_campaign c ON c.id = r.campaign_id
                WHERE c.state = 'sending' AND r.state = 'pending'
                  AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= now() AT TIME ZONE 'UTC')"""
            )
        )
        return self.env.cr.fetchone()[0]

    def _trigger_next_retry(self):
        """Come back when the earliest postponed recipient or foreign claim may be taken."""
        self.env.cr.execute(
            SQL(
                """SELECT min(GREATEST(r.next_attempt_at, r.claim_expires_at))
                 FROM xrm_email_campaign_recipient r
                 JOIN xrm_email_campaign c ON c.id = r.campaign_id
                WHERE c.state = 'sending' AND r.state = 'pending'
                  AND (r.next_attempt_at > now() AT TIME ZONE 'UTC'
                       OR r.claim_expires_at > now() AT TIME ZONE 'UTC')"""
            )
        )
        next_at = self.env.cr.fetchone()[0]
        if next_at:
            self._wake_sending_crons(next_at)

    def _finish_if_complete(self):
        """Mark the campaign done once no recipient is pending (atomically, once)."""
        self.env.flush_all()
        self._commit()  # a fresh snapshot: a cancel or resume may just have changed the campaign
        execute_retrying(
            self.env.cr,
            SQL(
                """UPDATE xrm_email_campaign SET state = 'done', finished_at = now() AT TIME ZONE 'UTC'
                WHERE id = %s AND state = 'sending'
                  AND NOT EXISTS (SELECT 1 FROM xrm_email_campaign_recipient
                                   WHERE campaign_id = %s AND state = 'pending')
            RETURNING id""",
                self.id,
                self.id,
            ),
        )
        if self.env.cr.fetchone():
            self.invalidate_recordset(["state", "finished_at"])
            self._commit()

    def _finish_results_mails(self):
        """Send the results e-mail of every finished send that has not had one.

        The campaign is marked done first and the mail sent after, so a crash
        in between is caught up by the next run.
        """
        for campaign in self.search([("state", "=", "done"), ("results_sent_at", "=", False)]):
            campaign._send_results_mail()

    def _send_results_mail(self):
        self.ensure_one()
        failures = (
            self.env["xrm.email.campaign.recipient"]
            .sudo()
            .search(
                [("campaign_id", "=", self.id), ("state", "=", "failed")],
                limit=10000,
            )
        )
        subject, body = report.results_mail(
            self.name,
            self.sent_count,
            self.failed_count,
            self.cancelled_count,
            report.failure_reasons(failures.mapped("error_message")),
        )
        smtp_session = None
        try:
            smtp_session = self._connect_smtp()
            self._send_message(smtp_session, self._sending_constants(), self.account_id.email_from, subject, body)
        except Exception:  # the next cron run tries again; the send itself is complete
            _logger.warning("Results e-mail of campaign %s could not be sent yet", self.id, exc_info=True)
            return
        finally:
            self._close_smtp(smtp_session)
        self.write({"results_sent_at": fields.Datetime.now()})
        self._message_log(
            body=self.env._(
                "Sending finished: %(sent)s sent, %(not_sent)s not sent. Results e-mailed to %(to)s.",
                sent=self.sent_count,
                not_sent=self.not_sent_count,
                to=self.account_id.email_from,
            )
        )
        self._commit()

    def _commit(self):
        """Commit where a crash must not undo what was sent (see the class docstring)."""
        if in_real_worker():
            self.env.cr.commit()  # pylint: disable=invalid-commit

    # -- restart ----------------------------------------------------------------

    def _register_hook(self):
        """After a server (re)start, wake the sending cron at once if a send was interrupted.

        The cron thread would otherwise sleep up to a minute before its first
        poll; this is what makes an interrupted send resume by itself quickly.
        """
        super()._register_hook()
        if not in_real_worker():  # not in tests, nor when Odoo runs its test suite
            return
        self.env.cr.execute("SELECT 1 FROM xrm_email_campaign WHERE state = 'sending' LIMIT 1")
        if self.env.cr.fetchone():
            threading.Thread(
                target=_wake_cron_when_ready,
                args=(self.env.cr.dbname,),
                name="xrm-campaign-resume",
                daemon=True,
            ).start()


def _wake_cron_when_ready(dbname, wait_seconds=120, renotify=(3, 10, 20)):
    """Trigger the sending cron once the registry is ready, then re-notify a few times
    so cron workers forked after this moment (prefork) hear it too."""
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415 -- thread-local import of the ORM entry point
    from odoo.modules.registry import Registry  # noqa: PLC0415

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        registry = Registry.registries.get(dbname)
        if registry is not None and registry.ready:
            break
        time.sleep(0.5)
    else:
        return
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["xrm.email.campaign"]._wake_sending_crons()
        previous = 0
        for after in renotify:
            time.sleep(after - previous)
            previous = after
            with registry.cursor() as cr:
                api.Environment(cr, SUPERUSER_ID, {})["ir.cron"]._notifydb()
    except Exception:  # best effort: the 5-minute cron resumes the send anyway
        _logger.warning("Could not wake the campaign cron after restart", exc_info=True)
