from hms_agt import Agent
from hms_act import subscribe

agent = Agent("payment_bot")

@subscribe("charge_fee")
def handle_payment(task):
    ok = stripe.charge(task.payload["form_id"])
    return "success" if ok else "fail"
