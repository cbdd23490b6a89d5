#!/usr/bin/env python3
"""Prints hms-act's SLA violations as they happen (chapter 004's SLA monitor, from the outside).

hms-act publishes `sla.violation` (and `sla.warning`, `metrics.*`, `run.*`, `audit.checkpoint`) on the
`hms.governance` topic exchange. This listener binds its own durable queue `governance.sla-violations`
to `sla.violation` and prints each one; add `--key sla.warning` or `--key '#'` to see more.

    python governance_listener.py
"""

import argparse
import json
import os

import pika

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_URL))
    parser.add_argument("--exchange", default=os.environ.get("HMS_EXCHANGE_GOVERNANCE", "hms.governance"))
    parser.add_argument("--queue", default="governance.sla-violations")
    parser.add_argument("--key", action="append", help="binding key (repeatable); default sla.violation")
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    channel = connection.channel()
    # hms-act declares its exchanges: only check that it exists (a listener's user may not declare it).
    channel.exchange_declare(args.exchange, passive=True)
    channel.queue_declare(args.queue, durable=True)
    for key in args.key or ["sla.violation"]:
        channel.queue_bind(args.queue, args.exchange, routing_key=key)

    def on_event(ch, method, properties, body):
        try:
            event = json.loads(body)
        except ValueError:
            event = {"raw": body.decode(errors="replace")}
        print(f"{method.routing_key:14} run={event.get('run_id')} step={event.get('step_id')} "
              f"assignee={event.get('assignee')} at={event.get('at')} {event.get('detail') or ''}", flush=True)
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(args.queue, on_event)
    print(f"listening on {args.exchange} ({', '.join(args.key or ['sla.violation'])}) via {args.queue}", flush=True)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        pass
    connection.close()


if __name__ == "__main__":
    main()
