"""How fast an account may send: its provider's quota, and backing off when told to.

A rate limit of *L* messages per minute is a sequence of sending slots ``60 / L``
seconds apart (the generic cell rate algorithm without a burst): each mail takes
the next free slot and waits for it. The sequence lives in the account's row in
the database and a slot is taken by one atomic UPDATE, so all cron workers of
all servers sending for the account share it and, together, never exceed *L* in
any minute. The SQL is in ``xrm.email.account``; the rules are here.

A 4xx answer says "not now". One of them is usually about one recipient
(greylisting, a full mailbox): that recipient is retried later with its own
backoff. Several in a row, or a 421 (the server closes the session because it
is overloaded), say the provider is throttling the account: then the whole
account pauses for :data:`PAUSE_SECONDS`, on every worker, instead of burning
every recipient's tries on a server that refuses everything.
"""

PAUSE_SECONDS = 60
PAUSE_AFTER_TEMPORARY_IN_A_ROW = 3


def slot_interval(per_minute):
    """Seconds between two mails of an account limited to ``per_minute``, or None for no limit."""
    return 60.0 / per_minute if per_minute and per_minute > 0 else None


class TemporaryStreak:
    """Counts temporary SMTP refusals in a row within one batch."""

    def __init__(self, threshold=PAUSE_AFTER_TEMPORARY_IN_A_ROW):
        self.threshold = threshold
        self.count = 0

    def accepted(self):
        self.count = 0

    def refused(self, failure):
        """Record a refused mail (a :class:`~.delivery.DeliveryFailure`); return True
        when the account should pause."""
        if failure.code is None or not 400 <= failure.code < 500:
            self.count = 0  # a 5xx or a lost connection says nothing about throttling
            return False
        self.count += 1
        return failure.code == 421 or self.count >= self.threshold
