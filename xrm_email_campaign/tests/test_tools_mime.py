import email
import email.policy
from unittest import TestCase

from ..tools import mime

HTML = (
    "<p>Dear Zoë, 50 % = half.</p>\r\n"
    + "<p>"
    + "long line without breaks " * 20
    + "</p>\n"
    + ".a line that starts with a dot\n"
    + "trailing space \n"
    + "From the team\n"
)
TEXT = "Dear Zoë,\n.dot line\nend with space "


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


class TestMime(TestCase):
    def _mail(self, subject="Spring news for Zoë", html=HTML, text=TEXT):
        return mime.campaign_mail(
            ["From: Shop <shop@example.com>", "X-XRM-Campaign: 7"],
            mime.address("Zoë Doe", "zoe@example.org"),
            subject,
            "<id-1@example.com>",
            html,
            text,
        )

    def test_parts_decode_to_the_rendered_text(self):
        message = parse(self._mail())
        self.assertEqual(message.get_content_type(), "multipart/alternative")
        plain = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        self.assertEqual(plain.replace("\r\n", "\n"), TEXT)
        self.assertEqual(html.replace("\r\n", "\n"), HTML.replace("\r\n", "\n"))

    def test_headers(self):
        message = parse(self._mail())
        self.assertEqual(str(message["Subject"]), "Spring news for Zoë")
        self.assertEqual(message["To"].addresses[0].display_name, "Zoë Doe")
        self.assertEqual(message["Message-Id"], "<id-1@example.com>")
        self.assertEqual(message["X-XRM-Campaign"], "7")
        self.assertTrue(message["Date"])

    def test_lines_are_crlf_and_short(self):
        data = self._mail()
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""), "no bare LF")
        self.assertLessEqual(max(len(line) for line in data.split(b"\r\n")), 998, "RFC 5322 line limit")
        self.assertTrue(data.isascii())

    def test_quoted_printable_is_smaller_than_base64_for_ascii_html(self):
        html = "<p>" + "plain ascii words " * 400 + "</p>"
        self.assertLess(len(mime.quoted_printable(html)), len(html) * 1.1)

    def test_every_mail_has_its_own_boundary(self):
        boundaries = {parse(self._mail()).get_boundary() for _ in range(50)}
        self.assertEqual(len(boundaries), 50)
