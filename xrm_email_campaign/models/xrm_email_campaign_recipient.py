import threading

from psycopg2.extensions import TransactionRollbackError

from odoo import api, fields, models, modules
from odoo.tools import SQL, create_index

STATEMENT_ATTEMPTS = 5


def in_real_worker():
    """Commits make outcomes durable in a real worker; tests must never commit."""
    return not getattr(threading.current_thread(), "testing", False) and not modules.module.current_test


def execute_retrying(cr, query):
    """Run a claim or outcome statement, on a fresh snapshot if a concurrent change got in the way.

    Odoo's transactions are REPEATABLE READ: a row that another transaction
    changed since this one's snapshot cannot be updated or locked in it (a
    serialization error). That happens when a user cancels while a batch is
    being sent, or when two workers claim at the same moment. The mail may
    have gone out already, so its outcome must be written anyway; and the
    worker commits after every claim and every mail, so the transaction holds
    nothing else: rolling back and running the statement again loses nothing.
    """
    for attempt in range(1, STATEMENT_ATTEMPTS + 1):
        try:
            cr.execute(query, log_exceptions=False)
            return
        except TransactionRollbackError:
            if attempt == STATEMENT_ATTEMPTS or not in_real_worker():
                raise
            cr.rollback()


class XrmEmailCampaignRecipient(models.Model):
    """The link between a campaign and one recipient, and that recipient's delivery.

    States:

    * ``pending``: not sent yet (maybe waiting for a retry, see ``next_attempt_at``);
    * ``sent``: the SMTP server accepted the mail; the link type becomes
      'E-mail campaign recipient';
    * ``failed``: no address, an invalid one, a permanent SMTP refusal, or
      temporary refusals until the retries ran out (``error_message`` says which,
      ``failure_kind`` tells the temporary ones apart for a retry);
    * ``cancelled``: the send was cancelled before this recipient's turn;
      resuming turns it back into ``pending``.

    A sending worker *claims* pending rows before it sends (``claim_*``
    columns, committed): the claim names the PostgreSQL backend of the worker,
    so a claim whose backend is gone (a killed server) or whose lease ran out
    is taken over by the next worker. The claim and outcome methods below are
    SQL on purpose: they run once per message in the send loop.
    """

    _name = "xrm.email.campaign.recipient"
    _description = "E-mail Campaign Recipient"
    _order = "id"
    _rec_name = "partner_id"

    campaign_id = fields.Many2one("xrm.email.campaign", required=True, ondelete="cascade", index=True)
    partner_id = fields.Many2one("res.partner", "Recipient", required=True, ondelete="cascade", index=True)
    email = fields.Char(help="The address the mail goes to; taken from the contact when it is linked.")
    company_id = fields.Many2one(related="campaign_id.company_id", store=True)
    link_type_id = fields.Many2one(
        "xrm.link.type",
        required=True,
        default=lambda self: self.env.ref("xrm_email_campaign.link_type_unspecified"),
    )
    state = fields.Selection(
        [("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed"), ("cancelled", "Cancelled")],
        default="pending",
        required=True,
    )
    sent_at = fields.Datetime(readonly=True)
    error_message = fields.Text(readonly=True)
    failure_kind = fields.Selection(
        [("temporary", "Temporary"), ("permanent", "Permanent")],
        readonly=True,
        help="Temporary: the SMTP server kept answering 'try later' (4xx) or the connection kept failing until "
        "the retries ran out; trying again later may work. Permanent: no or an invalid address, a refusal (5xx) "
        "or a template error for this recipient.",
    )
    message_id = fields.Char("Message-ID", readonly=True)
    attempt_count = fields.Integer(readonly=True, help="Tries that met a temporary SMTP failure.")
    next_attempt_at = fields.Datetime(readonly=True, help="A temporary failure postpones the recipient until then.")
    claim_pid = fields.Integer(readonly=True, copy=False)
    claim_backend_start = fields.Datetime(readonly=True, copy=False)
    claim_expires_at = fields.Datetime(readonly=True, copy=False)

    _sql_constraints = [
        (
            "campaign_partner_unique",
            "unique(campaign_id, partner_id)",
            "This contact is already linked to the campaign.",
        ),
    ]

    def init(self):
        # The claim query walks the pending rows of one campaign in id order.
        create_index(
            self.env.cr,
            "xrm_email_campaign_recipient_pending_idx",
            self._table,
            ["campaign_id", "id"],
            where="state = 'pending'",
        )
        create_index(self.env.cr, "xrm_email_campaign_recipient_state_idx", self._table, ["campaign_id", "state"])

    @api.depends("partner_id.name", "email")
    def _compute_display_name(self):
        for recipient in self:
            recipient.display_name = f"{recipient.partner_id.name or ''} <{recipient.email or ''}>"

    # -- bulk linking ---------------------------------------------------------

    @api.model
    def _link_partners(self, campaign, partner_ids):
        """Insert one link per partner not linked yet, in one statement; return how many."""
        self.flush_model()
        unspecified = self.env.ref("xrm_email_campaign.link_type_unspecified")
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO xrm_email_campaign_recipient
                (campaign_id, partner_id, email, company_id, link_type_id, state, attempt_count,
                 create_uid, write_uid, create_date, write_date)
            SELECT %(campaign)s, p.id, p.email, %(company)s, %(link_type)s, 'pending', 0,
                   %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM res_partner p
             WHERE p.id = ANY(%(partners)s)
            ON CONFLICT (campaign_id, partner_id) DO NOTHING
            """,
                campaign=campaign.id,
                company=campaign.company_id.id,
                link_type=unspecified.id,
                uid=self.env.uid,
                partners=list(partner_ids),
            )
        )
        added = self.env.cr.rowcount
        self.invalidate_model()
        campaign.invalidate_recordset(["recipient_ids"])
        return added

    # -- claims and outcomes (the send loop) ------------------------------------

    @api.model
    def _claim_batch(self, campaign_id, size, lease_seconds):
        """Claim up to ``size`` sendable pending recipients of a campaign; return their ids.

        ``FOR UPDATE SKIP LOCKED`` keeps two workers from claiming the same
        rows at the same moment; the claim itself (this backend's pid and
        start time, and a lease) is what keeps them apart after the commit.
        """
        self.env.flush_all()
        execute_retrying(
            self.env.cr,
            SQL(
                """
            WITH me AS (
                SELECT pid, backend_start AT TIME ZONE 'UTC' AS started
                  FROM pg_stat_activity WHERE pid = pg_backend_pid()
            )
            UPDATE xrm_email_campaign_recipient r
               SET claim_pid = me.pid,
                   claim_backend_start = me.started,
                   claim_expires_at = now() AT TIME ZONE 'UTC' + make_interval(secs => %(lease)s)
              FROM me
             WHERE r.id IN (
                SELECT c.id FROM xrm_email_campaign_recipient c
                 WHERE c.campaign_id = %(campaign)s
                   AND c.state = 'pending'
                   AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= now() AT TIME ZONE 'UTC')
                   AND (c.claim_pid IS NULL
                        OR c.claim_expires_at < now() AT TIME ZONE 'UTC'
                        OR NOT EXISTS (
                            SELECT 1 FROM pg_stat_activity a
                             WHERE a.pid = c.claim_pid
                               AND a.backend_start AT TIME ZONE 'UTC' = c.claim_backend_start))
                 ORDER BY c.id
                 LIMIT %(size)s
                   FOR UPDATE SKIP LOCKED)
            RETURNING r.id
            """,
                campaign=campaign_id,
                size=size,
                lease=lease_seconds,
            ),
        )
        ids = sorted(row[0] for row in self.env.cr.fetchall())
        self.invalidate_model(["claim_pid", "claim_backend_start", "claim_expires_at"])
        return self.browse(ids)

    def _set_outcome(self, **values):
        """Write an outcome and drop the claim, in one UPDATE; return the campaign's state
        as that statement saw it, so the send loop notices a cancel without a query of its own."""
        self.flush_model()
        assignments = [
            SQL("claim_pid = NULL, claim_backend_start = NULL, claim_expires_at = NULL"),
            SQL("write_date = now() AT TIME ZONE 'UTC'"),
        ]
        for column, value in values.items():
            assignments.append(SQL("%s = %s", SQL.identifier(column), value))
        execute_retrying(
            self.env.cr,
            SQL(
                """UPDATE xrm_email_campaign_recipient r SET %s WHERE r.id = ANY(%s)
                RETURNING (SELECT c.state FROM xrm_email_campaign c WHERE c.id = r.campaign_id)""",
                SQL(", ").join(assignments),
                self.ids,
            ),
        )
        row = self.env.cr.fetchone()
        self.invalidate_recordset()
        return row[0] if row else None

    def _mark_sent(self, message_id, sent_link_type_id):
        return self._set_outcome(
            state="sent",
            sent_at=fields.Datetime.now(),
            message_id=message_id,
            link_type_id=sent_link_type_id,
            error_message=None,
            failure_kind=None,
            next_attempt_at=None,
        )

    @api.model
    def _prepare_mark_sent(self):
        """Prepare the one statement run for every mail sent, for this connection.

        PostgreSQL plans a statement each time it is sent as text, and planning this
        UPDATE (a RETURNING sub-select, foreign keys, five indexes) costs more than
        running it; a prepared statement is planned once per batch. The send loop
        commits right after, so the statement outlives any rollback of the batch.
        """
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """PREPARE xrm_campaign_mark_sent (int, varchar, int) AS
                UPDATE xrm_email_campaign_recipient r
                   SET state = 'sent', sent_at = statement_timestamp() AT TIME ZONE 'UTC', message_id = $2,
                       link_type_id = $3, error_message = NULL, failure_kind = NULL, next_attempt_at = NULL,
                       claim_pid = NULL, claim_backend_start = NULL, claim_expires_at = NULL,
                       write_date = statement_timestamp() AT TIME ZONE 'UTC'
                 WHERE r.id = $1
             RETURNING (SELECT c.state FROM xrm_email_campaign c WHERE c.id = r.campaign_id)"""
            )
        )

    @api.model
    def _unprepare_mark_sent(self):
        self.env.cr.execute(SQL("DEALLOCATE xrm_campaign_mark_sent"))

    def _mark_sent_prepared(self, message_id, sent_link_type_id):
        """``_mark_sent`` through the statement of ``_prepare_mark_sent``; returns the campaign's state."""
        execute_retrying(
            self.env.cr, SQL("EXECUTE xrm_campaign_mark_sent(%s, %s, %s)", self.id, message_id, sent_link_type_id)
        )
        row = self.env.cr.fetchone()
        self.invalidate_recordset()
        return row[0] if row else None

    def _mark_failed(self, reason, temporary=False):
        return self._set_outcome(
            state="failed",
            error_message=reason,
            failure_kind="temporary" if temporary else "permanent",
            next_attempt_at=None,
        )

    def _postpone(self, reason, attempt, retry_at):
        return self._set_outcome(error_message=reason, attempt_count=attempt, next_attempt_at=retry_at)

    def _wait_for_server(self, reason, retry_at):
        return self._set_outcome(error_message=reason, next_attempt_at=retry_at)

    def _release_own_claims(self):
        """Hand back the rows of this batch this worker claimed but did not process."""
        if not self:
            return
        self.flush_model()
        execute_retrying(
            self.env.cr,
            SQL(
                """UPDATE xrm_email_campaign_recipient
                  SET claim_pid = NULL, claim_backend_start = NULL, claim_expires_at = NULL
                WHERE id = ANY(%s) AND claim_pid = pg_backend_pid()""",
                self.ids,
            ),
        )
        self.invalidate_recordset(["claim_pid", "claim_backend_start", "claim_expires_at"])

    def _renew_own_claims(self, lease_seconds):
        """Extend the lease of the rows of this batch this worker still holds."""
        self.flush_model()
        execute_retrying(
            self.env.cr,
            SQL(
                """UPDATE xrm_email_campaign_recipient
                      SET claim_expires_at = now() AT TIME ZONE 'UTC' + make_interval(secs => %s)
                    WHERE id = ANY(%s) AND claim_pid = pg_backend_pid()""",
                lease_seconds,
                self.ids,
            ),
        )
        self.invalidate_recordset(["claim_expires_at"])

    # -- rendering ------------------------------------------------------------------

    def _delivery_rows(self):
        """These recipients as plain dicts for the send loop: id, address, tries so far,
        a label for error messages, and the values a template may use (tools.rendering).

        Read in one go per batch: the loop commits after each mail, which empties
        the ORM cache, so reading records there would query again for every mail.
        """
        partners = {
            values["id"]: values
            for values in self.partner_id.read(
                [
                    "name",
                    "title",
                    "commercial_company_name",
                    "company_name",
                    "street",
                    "zip",
                    "city",
                    "country_id",
                    "phone",
                    "lang",
                ]
            )
        }
        rows = []
        for recipient in self:
            partner = partners[recipient.partner_id.id]
            rows.append(
                {
                    "id": recipient.id,
                    "email": recipient.email,
                    "attempt_count": recipient.attempt_count,
                    "name": partner["name"] or "",
                    "label": f"{partner['name'] or ''} <{recipient.email or ''}>",
                    "values": {
                        "name": partner["name"],
                        "email": recipient.email,
                        "title": partner["title"] and partner["title"][1],
                        "company_name": partner["commercial_company_name"] or partner["company_name"],
                        "street": partner["street"],
                        "zip": partner["zip"],
                        "city": partner["city"],
                        "country": partner["country_id"] and partner["country_id"][1],
                        "phone": partner["phone"],
                        "lang": partner["lang"],
                    },
                }
            )
        return rows
