"""One SMTP session that gets the next mail ready while the caller records the last one.

Each mail costs four SMTP round trips (MAIL, RCPT, DATA, the content) and one
database commit of its outcome. Done one after the other, the SMTP server and
the database wait for each other. Here a background thread speaks SMTP while
the caller commits: for mail *k* it sends MAIL, RCPT, DATA and the content,
then waits for the caller's go before it sends the final dot -- the moment the
server accepts the mail. The caller gives that go only once the outcome of mail
*k - 1* is committed, so a crash still leaves at most one mail sent without its
outcome recorded, exactly as in a plain send-then-commit loop. A cancel seen by
the caller aborts mail *k* with RSET: the server never accepts it.

Only the standard library's ``smtplib`` is used; RFC 5321 needs no PIPELINING
extension for this, since commands still go one at a time.
"""

import queue
import re
import smtplib
import socket
import threading

_LEADING_DOT = re.compile(rb"(?m)^\.")
_ABORTED = object()


class MailAborted(Exception):
    """The caller withdrew the mail before the server accepted it."""


class Ticket:
    """One mail in the pipeline: ``release()`` or ``abort()`` it, then ``result()``."""

    def __init__(self, rcpt, data):
        self.rcpt = rcpt
        self.data = data
        self._decision = queue.Queue(maxsize=1)
        self._done = threading.Event()
        self._error = None

    def release(self):
        """Let the server accept the mail (the previous outcome is durable)."""
        self._decision.put(True)

    def abort(self):
        self._decision.put(_ABORTED)

    def result(self):
        """Wait for the server's verdict; raise its error, or :class:`MailAborted`."""
        self._done.wait()
        if self._error is not None:
            raise self._error

    def _finish(self, error=None):
        self._error = error
        self._done.set()


class SmtpPipeline:
    """Sends tickets in order over ``smtp`` (an open ``smtplib.SMTP``, or None for a dry run)
    from a thread of its own."""

    def __init__(self, smtp, smtp_from):
        # Odoo wraps smtplib.SMTP in an SMTPConnection that hides send(); the pipeline
        # needs the raw client to hold the final dot back.
        self.smtp = getattr(smtp, "__obj__", smtp)
        if getattr(self.smtp, "sock", None) is not None:
            # The final dot is a write of its own after the content: with Nagle's algorithm
            # it would wait for the server's delayed ACK of the content (~40 ms a mail).
            self.smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.smtp_from = smtp_from
        self._tickets = queue.Queue()
        self._broken = None
        self._thread = threading.Thread(target=self._run, name="xrm-smtp-pipeline", daemon=True)
        self._thread.start()

    def submit(self, rcpt, data):
        """Queue a mail; its envelope and content go out as soon as the previous mail is done."""
        ticket = Ticket(rcpt, data)
        self._tickets.put(ticket)
        return ticket

    def close(self):
        """Stop the thread once the queued tickets are done (each must be released or aborted)."""
        self._tickets.put(None)
        self._thread.join()

    def _run(self):
        while (ticket := self._tickets.get()) is not None:
            if self._broken is not None:
                ticket._finish(self._broken)
                continue
            try:
                self._send(ticket)
            except MailAborted as aborted:
                ticket._finish(aborted)
            except smtplib.SMTPServerDisconnected as error:
                self._broken = error
                ticket._finish(error)
            except smtplib.SMTPException as error:
                ticket._finish(error)
            except Exception as error:  # noqa: BLE001 -- the caller waits on this ticket: never die silently
                self._broken = error  # a socket error or worse: the session cannot go on
                ticket._finish(error)
            else:
                ticket._finish()

    def _send(self, ticket):
        smtp = self.smtp
        if smtp is None:  # a dry run (Odoo's own test mode sends no mail): accepted once released
            if ticket._decision.get() is _ABORTED:
                raise MailAborted("the send was stopped before this mail was accepted")
            return
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(self.smtp_from)
        if code != 250:
            self._reset_quietly()
            raise smtplib.SMTPSenderRefused(code, reply, self.smtp_from)
        code, reply = smtp.rcpt(ticket.rcpt)
        if code not in (250, 251):
            self._reset_quietly()
            raise smtplib.SMTPRecipientsRefused({ticket.rcpt: (code, reply)})
        code, reply = smtp.docmd("data")
        if code != 354:
            self._reset_quietly()
            raise smtplib.SMTPDataError(code, reply)
        content = _LEADING_DOT.sub(b"..", ticket.data)
        if not content.endswith(b"\r\n"):
            content += b"\r\n"
        smtp.send(content)
        if ticket._decision.get() is _ABORTED:
            # Without the final dot the server cannot accept the mail; dropping the
            # connection is the only way out of DATA, so the pipeline ends here.
            self._broken = MailAborted("the send was stopped before this mail was accepted")
            smtp.close()
            raise self._broken
        smtp.send(b".\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            self._reset_quietly()
            raise smtplib.SMTPDataError(code, reply)

    def _reset_quietly(self):
        try:
            self.smtp.rset()
        except smtplib.SMTPServerDisconnected as error:
            self._broken = error  # the mails queued behind this one fail with it, and the batch stops
