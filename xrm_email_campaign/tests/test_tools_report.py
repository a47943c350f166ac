from unittest import TestCase

from ..tools import report


class TestReport(TestCase):
    def test_progress(self):
        self.assertEqual(report.progress_percent(0, 0), 0)
        self.assertEqual(report.progress_percent(1, 3), 33)
        self.assertEqual(report.progress_percent(3, 3), 100)

    def test_message_id_is_deterministic_per_campaign_and_recipient(self):
        first = report.campaign_message_id("uuid-1", 7, 42, "example.com")
        self.assertEqual(first, report.campaign_message_id("uuid-1", 7, 42, "example.com"))
        self.assertNotEqual(first, report.campaign_message_id("uuid-1", 7, 43, "example.com"))
        self.assertNotEqual(first, report.campaign_message_id("uuid-2", 7, 42, "example.com"))
        self.assertTrue(first.startswith("<") and first.endswith("@example.com>"))

    def test_results_mail_counts_and_escaped_reasons(self):
        reasons = report.failure_reasons(["550 no such user", "550 no such user", "<script>", None])
        self.assertEqual(reasons[0], ("550 no such user", 2))
        subject, body = report.results_mail("Spring", sent=10, failed=3, cancelled=1, reasons=reasons)
        self.assertEqual(subject, "E-mail campaign 'Spring' finished: 10 sent, 4 not sent")
        self.assertIn("Sent successfully: <b>10</b>", body)
        self.assertIn("&lt;script&gt;", body)
        self.assertIn("unknown reason", body)
