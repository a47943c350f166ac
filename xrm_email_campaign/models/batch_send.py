"""The send loop of one claimed batch: ``xrm.email.campaign._send_batch_over``.

Not a model: the state of one pass over a batch (the mail in flight, the SMTP
pipeline, a streak of temporary refusals, the lease) kept together, while each
step delegates to the campaign, its recipients and its account.

The order of events per mail is what the delivery guarantees rest on: the
outcome of a mail is committed before the server may accept the next one, so a
crash leaves at most one mail accepted without its outcome (one duplicate on
resume), and a cancel, a broken session or a pause stops the batch before the
next mail is accepted.
"""

import time
from datetime import timedelta

from odoo import fields, modules

from ..tools import delivery, throttle
from ..tools.smtp_pipeline import MailAborted, SmtpPipeline


class BatchSend:
    """One pass over a claimed batch; ``run()`` returns how many recipients were processed."""

    def __init__(self, campaign, smtp_session, batch, lease_seconds, deadline):
        self.campaign = campaign
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.deadline = deadline
        self.template = campaign._compile_template_or_none()
        self.constants = campaign._sending_constants()
        self.batch_mail = campaign._prepare_batch_mail(smtp_session, self.constants)
        self.recipients = campaign.env["xrm.email.campaign.recipient"].sudo()
        self.account = campaign.account_id.sudo()
        self.slot_interval = throttle.slot_interval(self.account.rate_limit_per_minute)
        self.streak = throttle.TemporaryStreak()
        self.processed = 0
        self.in_flight = None  # (recipient, ticket, tries so far, Message-ID) of the mail being accepted
        self.queued = None  # a ticket submitted but not released yet
        # A slow provider may take longer than the lease for a whole batch: renew it
        # before a third of it has passed, so no other worker takes over live claims.
        self.renew_at = time.monotonic() + lease_seconds / 3
        # Each outcome is committed before the next mail is accepted; PostgreSQL need not
        # wait for the disk on those commits: a killed Odoo loses none of them (the server
        # has them), only a crash of PostgreSQL itself could lose the last fraction of a second.
        campaign.env.cr.execute("SET synchronous_commit TO OFF")
        self.recipients._prepare_mark_sent()
        campaign._commit()
        smtp = None if modules.module.current_test else smtp_session  # as Odoo: no SMTP in its own test runs
        self.pipeline = SmtpPipeline(smtp, self.batch_mail["smtp_from"])

    def run(self):
        for row in self.batch._delivery_rows():
            if self.deadline is not None and time.monotonic() >= self.deadline:
                break
            self._renew_claims_when_due()
            recipient = self.recipients.browse(row["id"])
            mail = self.campaign._prepare_delivery(self.template, row, self.constants, self.batch_mail)
            if "failure" in mail:
                if not self._settle() or not self._record_unsendable(recipient, mail["failure"]):
                    break
                continue
            if self.slot_interval and not (self._settle() and self._wait_for_slot()):
                break
            self.queued = self.pipeline.submit(mail["email"], mail["data"])
            if not self._settle():
                break
            self.queued.release()
            self.in_flight = (recipient, self.queued, row["attempt_count"], mail["message_id"])
            self.queued = None
        self._settle()
        return self.processed

    def close(self):
        if self.queued is not None:
            # A cancel, a broken session, a pause or an error stopped the loop: the queued
            # mail is never accepted, so its recipient stays pending for the next batch.
            self.queued.abort()
        self.pipeline.close()
        self.recipients._unprepare_mark_sent()
        self.campaign.env.cr.execute("RESET synchronous_commit")

    def _settle(self):
        """Wait for the server's verdict on the mail in flight and commit its outcome.

        Returns whether the batch goes on: not when the campaign left 'sending' (the
        outcome's UPDATE reads its state, so a cancel costs no query of its own), the
        SMTP session broke, or the account must pause.
        """
        if self.in_flight is None:
            return True
        recipient, ticket, previous_attempts, message_id = self.in_flight
        self.in_flight = None
        try:
            ticket.result()
        except MailAborted:
            return False  # not accepted: the recipient stays pending
        except Exception as error:  # noqa: BLE001 -- every SMTP outcome is recorded, none is lost
            return self._record_refusal(recipient, previous_attempts, delivery.classify_smtp_error(error))
        self.streak.accepted()
        state = recipient._mark_sent_prepared(message_id, self.constants["sent_link_type_id"])
        self.campaign._commit()  # durable before the pipeline may let the next mail be accepted
        self.processed += 1
        return state == "sending"

    def _record_refusal(self, recipient, previous_attempts, failure):
        state = self.campaign._record_failure(recipient, previous_attempts, failure)
        pause = self.streak.refused(failure)
        if pause:
            self.account._pause_sending(throttle.PAUSE_SECONDS, failure.reason)
        self.campaign._commit()
        self.processed += 1
        return state == "sending" and not failure.session_broken and not pause

    def _record_unsendable(self, recipient, reason):
        state = recipient._mark_failed(reason)
        self.campaign._commit()
        self.processed += 1
        return state == "sending"

    def _wait_for_slot(self):
        """Wait for the account's next sending slot; False when it falls after this run."""
        wait = self.account._reserve_send_slot(self.slot_interval)
        self.campaign._commit()  # releases the account's row for the other workers
        if self.deadline is not None and time.monotonic() + wait > self.deadline:
            # The slot is lost, never exceeded: the next run takes the next one.
            self.campaign._wake_sending_crons(fields.Datetime.now() + timedelta(seconds=wait))
            return False
        if wait > 0:
            time.sleep(wait)
        return True

    def _renew_claims_when_due(self):
        if time.monotonic() >= self.renew_at:
            self.batch._renew_own_claims(self.lease_seconds)
            self.renew_at = time.monotonic() + self.lease_seconds / 3
