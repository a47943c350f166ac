from unittest import TestCase

from ..tools import delivery, throttle


def refusal(code, text="try again later"):
    return delivery.DeliveryFailure(permanent=code >= 500, reason=f"{code} {text}", code=code)


class TestThrottle(TestCase):
    def test_slot_interval_spreads_a_minute_over_the_limit(self):
        self.assertEqual(throttle.slot_interval(600), 0.1)
        self.assertEqual(throttle.slot_interval(1), 60.0)
        self.assertIsNone(throttle.slot_interval(0), "0 means no limit")
        self.assertIsNone(throttle.slot_interval(None))

    def test_one_greylisted_recipient_does_not_pause_the_account(self):
        streak = throttle.TemporaryStreak()
        self.assertFalse(streak.refused(refusal(451)))
        streak.accepted()
        self.assertFalse(streak.refused(refusal(450)))
        self.assertFalse(streak.refused(refusal(452)))

    def test_temporary_refusals_in_a_row_pause_the_account(self):
        streak = throttle.TemporaryStreak(threshold=3)
        self.assertEqual([streak.refused(refusal(451)) for _ in range(3)], [False, False, True])

    def test_421_pauses_at_once(self):
        self.assertTrue(throttle.TemporaryStreak().refused(refusal(421, "too many connections")))

    def test_a_permanent_refusal_or_lost_connection_breaks_the_streak(self):
        streak = throttle.TemporaryStreak(threshold=2)
        streak.refused(refusal(451))
        self.assertFalse(streak.refused(refusal(550, "no such user")))
        self.assertFalse(streak.refused(refusal(451)))
        lost = delivery.DeliveryFailure(False, "connection lost", session_broken=True)
        self.assertFalse(streak.refused(lost))
        self.assertFalse(streak.refused(refusal(451)))
        self.assertTrue(streak.refused(refusal(451)))

    def test_classified_smtp_errors_carry_their_code(self):
        import smtplib  # noqa: PLC0415

        error = smtplib.SMTPRecipientsRefused({"a@example.org": (451, b"4.7.0 slow down")})
        self.assertEqual(delivery.classify_smtp_error(error).code, 451)
        self.assertIsNone(delivery.classify_smtp_error(ConnectionResetError()).code)
