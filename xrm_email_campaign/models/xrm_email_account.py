from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL
from odoo.tools.mail import email_normalize

from .xrm_email_campaign_recipient import execute_retrying


class XrmEmailAccount(models.Model):
    """The sending identity shared by every user who sends a campaign with it.

    Its sender (``email_from``) receives the test e-mails and the results
    e-mail of every send.
    """

    _name = "xrm.email.account"
    _description = "E-mail Account for Campaigns"
    _order = "name"

    name = fields.Char(required=True)
    email_from = fields.Char(
        "Sender",
        required=True,
        help="Address the campaigns are sent from. It also receives the test e-mails and the results e-mails.",
    )
    mail_server_id = fields.Many2one(
        "ir.mail_server",
        "Outgoing Mail Server",
        help="Leave empty to use Odoo's default outgoing mail server.",
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    active = fields.Boolean(default=True)
    rate_limit_per_minute = fields.Integer(
        "Messages per minute",
        help="The most mails this account may send in any minute, over all campaigns, cron workers and "
        "servers together (your provider's quota). 0: as fast as the server takes them.",
    )
    # Written by the send loop in SQL (see tools/throttle.py), shown read-only.
    next_slot_at = fields.Datetime(
        "Next sending slot",
        readonly=True,
        copy=False,
        help="With a rate limit: the moment the next mail of this account may be sent.",
    )
    paused_until = fields.Datetime(
        "Sending paused until",
        readonly=True,
        copy=False,
        help="The SMTP server answered 'try again later' to several mails in a row: every worker "
        "waits until then before it sends for this account again.",
    )
    pause_reason = fields.Char("Why paused", readonly=True, copy=False)

    _sql_constraints = [
        ("name_company_unique", "unique(name, company_id)", "An e-mail account with this name already exists."),
    ]

    @api.constrains("rate_limit_per_minute")
    def _check_rate_limit(self):
        for account in self:
            if account.rate_limit_per_minute < 0:
                raise ValidationError(
                    self.env._(
                        "The rate limit of account '%s' must be 0 (no limit) or a number of messages per minute.",
                        account.name,
                    )
                )

    @api.constrains("email_from")
    def _check_email_from(self):
        for account in self:
            if not email_normalize(account.email_from):
                raise ValidationError(
                    self.env._(
                        "The sender '%(sender)s' of account '%(account)s' is not a valid e-mail address.",
                        sender=account.email_from,
                        account=account.name,
                    )
                )

    # -- the send loop (one SQL statement each, shared by every worker; see tools/throttle.py) --

    def _reserve_send_slot(self, interval):
        """Take this account's next sending slot, ``interval`` seconds after the last one
        taken (or now, or the end of a pause); return how many seconds to wait for it.

        The caller commits at once: that releases the account's row for the other workers.
        """
        self.ensure_one()
        execute_retrying(
            self.env.cr,
            SQL(
                """WITH clock AS (SELECT clock_timestamp() AT TIME ZONE 'UTC' AS now)
                UPDATE xrm_email_account a
                   SET next_slot_at = GREATEST(a.next_slot_at, a.paused_until, clock.now)
                                      + make_interval(secs => %(interval)s)
                  FROM clock
                 WHERE a.id = %(id)s
             RETURNING GREATEST(0, extract(epoch FROM a.next_slot_at - clock.now) - %(interval)s)""",
                interval=interval,
                id=self.id,
            ),
        )
        self.invalidate_recordset(["next_slot_at"])
        return float(self.env.cr.fetchone()[0])

    def _pause_sending(self, seconds, reason):
        """Back off: no worker sends for this account for ``seconds`` (or longer, if already paused)."""
        self.ensure_one()
        execute_retrying(
            self.env.cr,
            SQL(
                """UPDATE xrm_email_account
                      SET paused_until = GREATEST(paused_until,
                                                  clock_timestamp() AT TIME ZONE 'UTC' + make_interval(secs => %s)),
                          pause_reason = %s
                    WHERE id = %s""",
                seconds,
                reason,
                self.id,
            ),
        )
        self.invalidate_recordset(["paused_until", "pause_reason"])

    def _running_pause_end(self):
        """The end of a pause still running, read from the database (another worker may
        have just paused the account), or None."""
        self.ensure_one()
        self.env.cr.execute(
            SQL(
                """SELECT paused_until FROM xrm_email_account
                    WHERE id = %s AND paused_until > clock_timestamp() AT TIME ZONE 'UTC'""",
                self.id,
            )
        )
        row = self.env.cr.fetchone()
        return row[0] if row else None
