"""Campaign templates: jinja2's sandbox over a whitelisted, plain-data context.

Templates are written by CRM users, so they run in jinja2's
``ImmutableSandboxedEnvironment`` and only ever see plain ``dict``/``str``
values built by :func:`recipient_context` -- never ORM records, which would
give a template author a path to ``env`` and every table of the database.
"""

import functools

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Fields of a recipient a template may use, all plain strings.
RECIPIENT_FIELDS = (
    "name",
    "email",
    "first_name",
    "last_name",
    "title",
    "company_name",
    "street",
    "zip",
    "city",
    "country",
    "phone",
    "lang",
)

_BODY_ENV = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_SUBJECT_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_TEXT_ENV = _SUBJECT_ENV


class TemplateRenderError(ValueError):
    """A campaign template could not be compiled or rendered.

    ``part`` is ``"subject"`` or ``"body"``; ``recipient`` names the recipient
    whose data was being rendered, when there was one.
    """

    def __init__(self, part, message, recipient=None):
        self.part = part
        self.recipient = recipient
        self.message = message
        where = f"{part} template"
        if recipient:
            where += f" for recipient {recipient}"
        super().__init__(f"Error in the {where}: {message}")


def recipient_context(values, campaign_name, sender_name, sender_email):
    """Build the whitelisted render context from plain values.

    ``values`` is a mapping with (some of) :data:`RECIPIENT_FIELDS`; missing or
    empty ones become ``""`` so a template never fails on a partner that lacks
    a city, only on a variable that does not exist at all.
    """
    recipient = {key: str(values.get(key) or "") for key in RECIPIENT_FIELDS}
    if not recipient["first_name"] and not recipient["last_name"]:
        first, _sep, last = recipient["name"].partition(" ")
        recipient["first_name"], recipient["last_name"] = first, last
    return {
        "recipient": recipient,
        "campaign": {"name": campaign_name or ""},
        "sender": {"name": sender_name or "", "email": sender_email or ""},
    }


def _check_subject_line(text, recipient=None):
    if "\r" in text or "\n" in text:
        raise TemplateRenderError("subject", "a subject must be one line (it contains a line break)", recipient)


class CampaignTemplate:
    """A campaign's subject and HTML body, compiled once, rendered per recipient."""

    def __init__(self, subject, body_html, html_to_text=None):
        _check_subject_line(subject or "")
        self._subject = self._compile(_SUBJECT_ENV, "subject", subject or "")
        self._body = self._compile(_BODY_ENV, "body", body_html or "")
        self._html_to_text = html_to_text
        self._text = self._text_template(body_html or "") if html_to_text else None
        self._text_checked = False

    def _text_template(self, body_source):
        """The plain-text alternative as a template of its own, converted from the HTML
        template once instead of converting every rendered mail (an HTML parse per mail).
        A template whose conversion does not compile falls back to per-mail conversion."""
        try:
            return _TEXT_ENV.from_string(self._html_to_text(body_source))
        except TemplateError:
            return None

    @staticmethod
    def _compile(env, part, source):
        try:
            return env.from_string(source)
        except TemplateError as error:
            line = getattr(error, "lineno", None)
            message = f"line {line}: {error}" if line else str(error)
            raise TemplateRenderError(part, message) from error

    def render(self, context, recipient_label=None):
        """Return ``(subject, body_html)`` for one recipient's context."""
        subject = self._render_part(self._subject, "subject", context, recipient_label)
        _check_subject_line(subject, recipient_label)
        body = self._render_part(self._body, "body", context, recipient_label)
        return subject.strip(), body

    def render_mail(self, context, recipient_label=None):
        """Return ``(subject, body_html, body_text)`` for one recipient's context.

        The first mail checks the text template against converting the rendered
        HTML; if they differ (jinja tags inside HTML attributes, say), every mail
        of this template is converted instead, so the text is never wrong.
        """
        subject, html = self.render(context, recipient_label)
        if self._text is None:
            return subject, html, self._html_to_text(html) if self._html_to_text else ""
        text = self._render_part(self._text, "body", context, recipient_label)
        if not self._text_checked:
            self._text_checked = True
            converted = self._html_to_text(html)
            if text != converted:
                self._text = None
                return subject, html, converted
        return subject, html, text

    @staticmethod
    def _render_part(template, part, context, recipient_label):
        try:
            return template.render(context)
        except TemplateError as error:
            raise TemplateRenderError(part, str(error), recipient_label) from error
        except Exception as error:  # any runtime error of a template is its author's to fix
            message = f"{type(error).__name__}: {error}"
            raise TemplateRenderError(part, message, recipient_label) from error


@functools.lru_cache(maxsize=32)
def compiled_template(subject, body_html, html_to_text=None):
    """A :class:`CampaignTemplate` compiled once per process for the same sources.

    The send loop needs one per batch; compiling three jinja2 templates each time
    cost more than rendering the batch's mails. A compile error is not cached.
    """
    return CampaignTemplate(subject, body_html, html_to_text=html_to_text)
