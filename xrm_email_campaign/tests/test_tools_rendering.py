from unittest import TestCase

from ..tools.rendering import CampaignTemplate, TemplateRenderError, recipient_context


def _context(**recipient):
    return recipient_context(recipient, "Spring", "Marketing", "m@example.com")


class TestRendering(TestCase):
    def test_renders_recipient_campaign_and_sender(self):
        template = CampaignTemplate("Hi {{ recipient.first_name }}", "<p>{{ campaign.name }} by {{ sender.email }}</p>")
        subject, body = template.render(_context(name="Ada Lovelace"))
        self.assertEqual(subject, "Hi Ada")
        self.assertEqual(body, "<p>Spring by m@example.com</p>")

    def test_body_is_autoescaped_subject_is_not(self):
        template = CampaignTemplate("{{ recipient.name }}", "<p>{{ recipient.name }}</p>")
        subject, body = template.render(_context(name="<b>Tom & Jerry</b>"))
        self.assertEqual(subject, "<b>Tom & Jerry</b>")
        self.assertEqual(body, "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>")

    def test_missing_values_are_empty_not_errors(self):
        template = CampaignTemplate("x", "{{ recipient.city }}|{{ recipient.country }}")
        self.assertEqual(template.render(_context(name="A"))[1], "|")

    def test_undefined_variable_names_recipient_and_part(self):
        template = CampaignTemplate("Hi", "{{ recipient.shoe_size }}")
        with self.assertRaises(TemplateRenderError) as caught:
            template.render(_context(name="Ada"), recipient_label="Ada <ada@example.org>")
        self.assertEqual(caught.exception.part, "body")
        self.assertIn("Ada <ada@example.org>", str(caught.exception))
        self.assertIn("shoe_size", str(caught.exception))

    def test_syntax_error_names_line(self):
        with self.assertRaises(TemplateRenderError) as caught:
            CampaignTemplate("ok", "<p>\n{% if %}</p>")
        self.assertIn("line 2", str(caught.exception))
        self.assertEqual(caught.exception.part, "body")

    def test_subject_with_line_break_refused(self):
        with self.assertRaises(TemplateRenderError):
            CampaignTemplate("Hello\r\nBcc: victim@example.org", "body")
        template = CampaignTemplate("{{ recipient.name }}", "body")
        with self.assertRaises(TemplateRenderError) as caught:
            template.render(_context(name="Evil\nBcc: x@example.org"), recipient_label="Evil")
        self.assertEqual(caught.exception.part, "subject")

    def test_sandbox_blocks_unsafe_attributes(self):
        template = CampaignTemplate("x", "{{ recipient.__class__.__mro__ }}")
        with self.assertRaises(TemplateRenderError):
            template.render(_context(name="A"))

    def test_context_is_plain_data_only(self):
        context = _context(name="Ada", city="Paris", unknown_field="dropped")
        self.assertNotIn("unknown_field", context["recipient"])
        for part in context.values():
            self.assertIsInstance(part, dict)
            self.assertTrue(all(isinstance(value, str) for value in part.values()))
