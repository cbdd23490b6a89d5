# file: fire_event.py   (13 lines)
from hms_act import ACTClient
import uuid, datetime

act = ACTClient()
event = {
    "type": "noise.complaint.filed",
    "id": str(uuid.uuid4()),
    "time": datetime.datetime.utcnow().isoformat(),
    "payload": {"address": "123 Oak St", "evidence": "phone_video.mp4"}
}
act.emit(event)
print("Event emitted:", event["id"])
