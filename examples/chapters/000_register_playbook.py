# file: register_playbook.py   (12 lines)
from hms_act import ACTClient

act = ACTClient()
act.register_playbook("playbooks/noise_complaint.yaml")
print("Playbook loaded!")
