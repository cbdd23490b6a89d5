"""Stand-in for the payment provider chapter 004's payment bot calls (``stripe.charge(form_id)``): not
hms-act, and not Stripe's real library. A charge succeeds unless the form id contains ``DECLINE``."""

from outside_record import record


def charge(form_id):
    return record("stripe", "charge", form_id, "DECLINE" not in str(form_id))
