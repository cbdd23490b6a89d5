# emit_event.py
import requests, json
event = {
  "name": "ComplaintLogged",
  "payload": { "complaintId": "C-42", "text": "Spam calls" }
}
requests.post("http://localhost:8100/act/events", json=event)
