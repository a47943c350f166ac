"""What to do with an SMTP answer: sent, failed for good, or retry later.

A permanent refusal (5xx) fails the recipient with the server's reply. A
temporary one (4xx) or a lost connection is retried with an exponential
backoff, and only fails after :data:`MAX_TEMPORARY_ATTEMPTS`.
"""

import smtplib
import socket
from dataclasses import dataclass

MAX_TEMPORARY_ATTEMPTS = 5
FIRST_RETRY_DELAY = 60  # seconds
MAX_RETRY_DELAY = 3600  # seconds


@dataclass(frozen=True)
class DeliveryFailure:
    """Why one message was not accepted.

    ``session_broken`` means the SMTP connection cannot be used any more, so
    the rest of the batch must be handed back rather than tried on it.
    """

    permanent: bool
    reason: str
    session_broken: bool = False
    code: int = None  # the SMTP reply code, when the server answered


def _decode(message):
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


def _from_code(code, text, session_broken=False):
    reason = f"{code} {_decode(text)}".strip()
    return DeliveryFailure(permanent=500 <= code < 600, reason=reason, session_broken=session_broken, code=code)


def classify_smtp_error(error):
    """Classify an exception raised while sending one message.

    Odoo's ``ir.mail_server.send_email`` wraps most SMTP errors into a
    ``MailDeliveryException``; the original error is its ``__context__``,
    which carries the SMTP reply code we need.
    """
    original = error
    while not isinstance(original, (smtplib.SMTPException, OSError)) and original.__context__:
        original = original.__context__
    if isinstance(original, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(original.recipients.values()))
        return _from_code(code, text)
    if isinstance(original, smtplib.SMTPServerDisconnected):
        return DeliveryFailure(False, f"connection lost: {original}", session_broken=True)
    if isinstance(original, smtplib.SMTPResponseException):
        # A 421 means the server is closing the session.
        return _from_code(original.smtp_code, original.smtp_error, session_broken=original.smtp_code == 421)
    if isinstance(original, (ConnectionError, socket.timeout, OSError)):
        return DeliveryFailure(False, f"connection error: {original}", session_broken=True)
    return DeliveryFailure(True, f"{type(original).__name__}: {original}")


def retry_delay(attempt):
    """Seconds to wait before try number ``attempt + 1`` (``attempt`` >= 1)."""
    return min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)


def gives_up(attempt):
    """Whether a temporary failure on try number ``attempt`` becomes final."""
    return attempt >= MAX_TEMPORARY_ATTEMPTS
