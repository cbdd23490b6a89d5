"""Chapter 002's "Backend API Gateway": the services a `call:` step reaches (finance, notify, helpdesk, hitl).

    python3 gateway.py PORT RECORD_FILE

Answers every POST/PUT/PATCH/DELETE with 200 and `{"ok": true, "path": …}`, and appends one JSON line per
request to RECORD_FILE: method, path, body and the headers hms-act sends (Idempotency-Key, X-HMS-*). A path
ending in `/fail-once` answers 503 the first time each Idempotency-Key is seen. Stops on SIGTERM.
"""

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = set()
LOCK = threading.Lock()


class Gateway(BaseHTTPRequestHandler):
    record_file = ""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        key = self.headers.get("Idempotency-Key")
        entry = {"method": self.command, "path": self.path, "body": body,
                 "headers": {name.lower(): value for name, value in self.headers.items()
                             if name.lower() == "idempotency-key" or name.lower().startswith("x-hms-")}}
        with LOCK:
            first = (self.path, key) not in SEEN
            SEEN.add((self.path, key))
            with open(self.record_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        status = 503 if self.path.endswith("/fail-once") and first else 200
        answer = json.dumps({"ok": status == 200, "path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


def main():
    port, Gateway.record_file = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Gateway)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"gateway listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
