# file: workers/tax_validator.py
from hms_act import fetch_task, complete_task, fail_task

while True:
    task = fetch_task(topic="validate_tax_id", max_wait="10s")
    if not task:
        continue                        # no work, loop again

    ok = external_irs_api(task.payload["form_id"])
    if ok:
        complete_task(task.id)          # timestamps success
    else:
        fail_task(task.id, reason="IRS mismatch")
