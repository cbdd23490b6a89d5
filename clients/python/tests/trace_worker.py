"""A push worker that traces (test_traces.py): ``@subscribe("svc.trace_test")`` with the OpenTelemetry SDK
configured as a user would, exporting its spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT, the tests'
receiver). hms_act runs each handler in a span continuing the task's ``traceparent`` and sends the result
with that span's context.

What the handler does, by step: ``review`` fails its first attempt (an exception: retryable); ``decide``
waits until the file TRACE_TEST_RELEASE exists, so the test can see its SLA warning first; the rest
complete at once.
"""

import os
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from hms_act import subscribe

provider = TracerProvider(resource=Resource.create({"service.name": "trace-test-worker"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)


@subscribe("svc.trace_test")
def handle(task):
    if task.step_id == "review" and task.attempt == 1:
        raise RuntimeError("the records office timed out")
    if task.step_id == "decide":
        release = os.environ["TRACE_TEST_RELEASE"]
        deadline = time.monotonic() + 120
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)
    return {"step": task.step_id, "attempt": task.attempt}
