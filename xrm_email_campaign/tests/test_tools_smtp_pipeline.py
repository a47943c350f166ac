"""The SMTP pipeline against a real SMTP server (aiosmtpd on 127.0.0.1), no database."""

import smtplib
import time
from unittest import TestCase

from ..tools.smtp_pipeline import MailAborted, SmtpPipeline
from .smtp_sink import SmtpSink

MAIL = b"Subject: hi\r\nMessage-Id: <%d@example.com>\r\n\r\nbody\r\n.starts with a dot\r\n"


class TestSmtpPipeline(TestCase):
    def setUp(self):
        super().setUp()
        self.sink = SmtpSink().start()
        self.addCleanup(self.sink.stop)
        self.smtp = smtplib.SMTP("127.0.0.1", self.sink.port, timeout=10)
        self.addCleanup(self._quit)
        self.pipeline = SmtpPipeline(self.smtp, "sender@example.com")

    def _quit(self):
        if self.smtp.sock is not None:  # an aborted mail closes the session on purpose
            self.smtp.quit()

    def test_the_server_accepts_a_mail_only_once_released(self):
        ticket = self.pipeline.submit("a@example.org", MAIL % 1)
        time.sleep(0.3)  # envelope and content are with the server by now
        self.assertEqual(self.sink.handler.count(), 0, "held before the final dot")
        ticket.release()
        ticket.result()
        self.pipeline.close()
        [message] = self.sink.handler.snapshot()
        self.assertEqual(message["rcpt_tos"], ["a@example.org"])
        self.assertIn(b"\r\n.starts with a dot", message["content"], "dot-stuffing undone by the server")

    def test_mails_go_in_order_over_one_session(self):
        tickets = [self.pipeline.submit(f"r{i}@example.org", MAIL % i) for i in range(5)]
        for ticket in tickets:
            ticket.release()
            ticket.result()
        self.pipeline.close()
        self.assertEqual(
            [m["rcpt_tos"][0] for m in self.sink.handler.snapshot()], [f"r{i}@example.org" for i in range(5)]
        )

    def test_a_refused_recipient_raises_and_the_session_goes_on(self):
        refused = self.pipeline.submit("reject@example.org", MAIL % 1)
        refused.release()
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as caught:
            refused.result()
        self.assertEqual(caught.exception.recipients["reject@example.org"][0], 550)
        accepted = self.pipeline.submit("ok@example.org", MAIL % 2)
        accepted.release()
        accepted.result()
        self.pipeline.close()
        self.assertEqual([m["rcpt_tos"] for m in self.sink.handler.snapshot()], [["ok@example.org"]])

    def test_an_aborted_mail_is_never_accepted_and_ends_the_session(self):
        aborted = self.pipeline.submit("a@example.org", MAIL % 1)
        behind = self.pipeline.submit("b@example.org", MAIL % 2)
        aborted.abort()
        with self.assertRaises(MailAborted):
            aborted.result()
        behind.release()
        with self.assertRaises(MailAborted):
            behind.result()
        self.pipeline.close()
        time.sleep(0.2)
        self.assertEqual(self.sink.handler.count(), 0)
