import smtplib
from unittest import TestCase

from ..tools import delivery


class TestDelivery(TestCase):
    def test_5xx_recipient_refusal_is_permanent_with_server_reply(self):
        error = smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 mailbox unavailable")})
        failure = delivery.classify_smtp_error(error)
        self.assertTrue(failure.permanent)
        self.assertEqual(failure.reason, "550 5.1.1 mailbox unavailable")
        self.assertFalse(failure.session_broken)

    def test_4xx_is_temporary(self):
        error = smtplib.SMTPRecipientsRefused({"a@example.org": (451, b"try later")})
        self.assertFalse(delivery.classify_smtp_error(error).permanent)

    def test_wrapped_error_is_unwrapped(self):
        """Odoo wraps SMTP errors in MailDeliveryException; the code lives in __context__."""
        wrapped = RuntimeError("Mail Delivery Failed")
        wrapped.__context__ = smtplib.SMTPDataError(552, b"message too big")
        failure = delivery.classify_smtp_error(wrapped)
        self.assertTrue(failure.permanent)
        self.assertIn("552", failure.reason)

    def test_lost_connection_is_temporary_and_breaks_session(self):
        for error in (smtplib.SMTPServerDisconnected("gone"), ConnectionRefusedError(111, "refused")):
            failure = delivery.classify_smtp_error(error)
            self.assertFalse(failure.permanent)
            self.assertTrue(failure.session_broken)

    def test_421_breaks_session(self):
        failure = delivery.classify_smtp_error(smtplib.SMTPDataError(421, b"closing"))
        self.assertFalse(failure.permanent)
        self.assertTrue(failure.session_broken)

    def test_backoff_grows_and_is_capped(self):
        delays = [delivery.retry_delay(attempt) for attempt in range(1, 10)]
        self.assertEqual(delays[:3], [60, 120, 240])
        self.assertEqual(delays[-1], delivery.MAX_RETRY_DELAY)
        self.assertFalse(delivery.gives_up(delivery.MAX_TEMPORARY_ATTEMPTS - 1))
        self.assertTrue(delivery.gives_up(delivery.MAX_TEMPORARY_ATTEMPTS))
