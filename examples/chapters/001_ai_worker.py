# ai_worker.py
import time, requests, random, json
while True:
    t = requests.get("http://act/tasks?actor=AI:fraud-labeler").json()
    for task in t:
        sev = random.choice(["High", "Low"])
        body = {"severity": sev}
        requests.post(f"http://act/tasks/{task['id']}/complete", json=body)
    time.sleep(5)
