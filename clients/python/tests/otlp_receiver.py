"""A small OTLP/HTTP trace receiver for the tests: what a collector would get from hms-act and the workers.

    python otlp_receiver.py PORT RECORD

Listens on 127.0.0.1:PORT for ``POST /v1/traces`` (``application/x-protobuf``), decodes each
``ExportTraceServiceRequest`` with the official definitions (the ``opentelemetry-proto`` package), and appends
one JSON line per span to RECORD: service name, trace and span ids in hex, parent, name, kind, start and end,
attributes, links and status. It prints ``listening`` once it accepts connections.

RECORD ``-`` is the benchmark's sink (bench/README.md, "Tracing"): requests are read and answered 200 without
decoding, as cheaply as a collector on another machine costs this one; the requests and bytes received are
printed on SIGTERM.
"""

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else None


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def spans(request):
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "service": resource.get("service.name"),
                    "resource": resource,
                    "scope": scope_spans.scope.name,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None,
                    "name": span.name,
                    "kind": Span.SpanKind.Name(span.kind),
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": attributes(span.attributes),
                    "links": [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                               "attributes": attributes(link.attributes)} for link in span.links],
                    "status": {"code": Status.StatusCode.Name(span.status.code), "message": span.status.message},
                }


class Handler(BaseHTTPRequestHandler):
    record = None
    received = {"requests": 0, "bytes": 0}

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.record == "-":
            with LOCK:
                self.received["requests"] += 1
                self.received["bytes"] += len(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(415 if self.path == "/v1/traces" else 404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # a body the official definitions cannot read is the exporter's bug
            self.send_response(400)
            self.end_headers()
            self.wfile.write(f"undecodable ExportTraceServiceRequest: {error}".encode())
            return
        lines = [json.dumps(span) + "\n" for span in spans(request)]
        with LOCK, open(self.record, "a", encoding="utf-8") as handle:
            handle.writelines(lines)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def main():
    port, record = int(sys.argv[1]), sys.argv[2]
    Handler.record = record
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def stop(signum, frame):
        print(f"received {Handler.received['requests']} requests, {Handler.received['bytes']} bytes", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
