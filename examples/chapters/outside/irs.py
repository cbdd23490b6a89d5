"""Stand-in for the IRS check chapter 004's tax validator calls (``external_irs_api(form_id)``): a form id
is valid unless it contains ``MISMATCH``."""

from outside_record import record


def external_irs_api(form_id):
    return record("irs", "external_irs_api", form_id, "MISMATCH" not in str(form_id))
