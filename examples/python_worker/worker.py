#!/usr/bin/env python3
"""An hms-act worker written against the AMQP contract only (DESIGN.md section 3), with pika.

It plays chapter 001's AI fraud labeler: it takes `task.ai.fraud-labeler` tasks from the `hms.tasks`
exchange, labels the complaint High or Low, and answers on the exchange and routing key the task names
in `reply_to`. The task is acked only after the broker confirmed the result, so a crash repeats a
result instead of losing it; hms-act ignores a repeated result (its inbox is keyed by task and attempt).

    pip install -r requirements.txt
    python worker.py                                  # AMQP_URL or amqp://guest:guest@127.0.0.1:5672/%2f
    python worker.py --routing-key task.ai.classifier --queue py-classifier
"""

import argparse
import json
import os
import random
import signal
import sys
import time

import pika
from pika.exceptions import AMQPConnectionError, UnroutableError

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


def label(task):
    """The "AI": High when the complaint text sounds like money was lost, otherwise a coin toss."""
    text = json.dumps(task.get("payload") or {}).lower()
    if any(word in text for word in ("wire", "bank", "gift card", "lost", "$")):
        return {"severity": "High"}
    return {"severity": random.choice(["High", "Low"])}


def answer(task, agent, failure_rate):
    """The result message body for one task attempt."""
    result = {"task_id": task["task_id"], "attempt": task["attempt"], "agent": agent}
    if random.random() < failure_rate:
        result.update(status="failed", reason="model timed out", retryable=True)
    else:
        result.update(status="completed", output=label(task))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_URL))
    parser.add_argument("--tasks-exchange", default=os.environ.get("HMS_EXCHANGE_TASKS", "hms.tasks"))
    parser.add_argument("--routing-key", default="task.ai.fraud-labeler", help="binding key on the tasks exchange")
    parser.add_argument("--queue", default="python-fraud-labeler", help="this worker's own durable queue")
    parser.add_argument("--agent", default="py-labeler#1", help="name shown in timelines (`by ...`)")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--prefetch", type=int, default=10)
    args = parser.parse_args()

    try:
        connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    except AMQPConnectionError as error:
        sys.exit(f"cannot connect to RabbitMQ at {args.amqp_url.split('@')[-1]}: {error!r}; "
                 "start it with scripts/stack up or set AMQP_URL")
    channel = connection.channel()
    channel.confirm_delivery()  # publishes now wait for the broker's confirm (and raise when unroutable)
    # hms-act declares its exchanges: only check that it exists (a worker's user may not declare it).
    channel.exchange_declare(args.tasks_exchange, passive=True)
    channel.queue_declare(args.queue, durable=True)
    channel.queue_bind(args.queue, args.tasks_exchange, routing_key=args.routing_key)
    channel.basic_qos(prefetch_count=args.prefetch)

    def on_task(ch, method, properties, body):
        try:
            task = json.loads(body)
            task_id, attempt = task["task_id"], task["attempt"]
        except (ValueError, KeyError, TypeError):
            print(f"rejecting a message that is not a task ({properties.message_id})", flush=True)
            ch.basic_reject(method.delivery_tag, requeue=False)
            return
        # properties.message_id is "<task_id>#<attempt>": the idempotency key of this attempt.
        reply = task.get("reply_to") or {}
        result = answer(task, args.agent, args.failure_rate)
        try:
            ch.basic_publish(
                exchange=reply.get("exchange", "hms.results"),
                routing_key=reply.get("routing_key", "result." + task.get("assignee", "unknown")),
                body=json.dumps(result).encode(),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=2,  # persistent
                    message_id=f"{task_id}#{attempt}/{result['status']}",
                    correlation_id=task.get("run_id"),
                    type="hms.task.result",
                    timestamp=int(time.time()),
                ),
                mandatory=True,
            )
        except UnroutableError:
            print(f"result for {task_id}#{attempt} was returned: is hms-act running (queue hms-act.results)?",
                  flush=True)
            ch.basic_nack(method.delivery_tag, requeue=True)
            time.sleep(1)
            return
        ch.basic_ack(method.delivery_tag)  # only after the confirmed publish
        shown = result.get("output") or result.get("reason")
        print(f"{result['status']:9} {task_id}#{attempt} -> {shown}", flush=True)

    channel.basic_consume(args.queue, on_task)
    signal.signal(signal.SIGTERM, lambda *_: channel.stop_consuming())
    print(f"waiting for {args.routing_key} tasks on queue {args.queue} (Ctrl-C stops)", flush=True)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        channel.stop_consuming()
    connection.close()


if __name__ == "__main__":
    main()
