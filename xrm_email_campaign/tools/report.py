"""Progress maths, deterministic Message-IDs and the results e-mail."""

import hashlib
from collections import Counter

from markupsafe import Markup, escape


def progress_percent(processed, total):
    """Share of recipients processed (sent or failed), 0-100, as an int."""
    if not total:
        return 0
    return min(100, int(processed * 100 / total))


def campaign_message_id(database_uuid, campaign_id, recipient_id, domain):
    """The Message-ID of one campaign mail to one recipient.

    It is the same every time the same recipient is tried, so a mail that is
    sent again after a crash is recognisable as the same message by the
    receiving servers and by anyone counting duplicates.
    """
    salt = hashlib.sha256(f"{database_uuid}".encode()).hexdigest()[:10]
    return f"<xrm-campaign-{campaign_id}-{recipient_id}-{salt}@{domain or 'localhost'}>"


def failure_reasons(messages, limit=20):
    """Count identical failure reasons, most frequent first."""
    return Counter(message or "unknown reason" for message in messages).most_common(limit)


def results_mail(campaign_name, sent, failed, cancelled, reasons):
    """Subject and HTML body of the mail sent to the account when a send ends."""
    not_sent = failed + cancelled
    subject = f"E-mail campaign '{campaign_name}' finished: {sent} sent, {not_sent} not sent"
    rows = Markup("").join(
        Markup("<tr><td>%s</td><td style='text-align:right'>%s</td></tr>") % (reason, count)
        for reason, count in reasons
    )
    body = Markup(
        "<p>The e-mail campaign <b>%s</b> has been processed.</p>"
        "<ul><li>Sent successfully: <b>%s</b></li>"
        "<li>Not sent: <b>%s</b> (failed: %s, cancelled: %s)</li></ul>"
    ) % (campaign_name, sent, not_sent, failed, cancelled)
    if rows:
        body += (
            Markup("<p>Reasons for the failures:</p><table><tr><th>Reason</th><th>Recipients</th></tr>%s</table>")
            % rows
        )
    return subject, str(escape(body))
