"""Push workers: ``@subscribe(topic)`` runs a function on every task hms-act publishes for the topic.

Chapter 004's payment bot::

    from hms_act import subscribe

    @subscribe("charge_fee")
    def handle_payment(task):
        ok = stripe.charge(task.payload["form_id"])
        return "success" if ok else "fail"

The script becomes the worker when it ends: the handlers registered by the script itself (the ``__main__``
module) start consuming when its last line has run (an ``atexit`` hook), until SIGTERM or Ctrl-C. Call
``hms_act.run()`` to start them at a point of your choosing (needed when the handlers live in an imported
module); ``HMS_ACT_AUTORUN=0`` turns the hook off. A script that raised an exception does not start.

What the handler returns becomes the task's result, published on the results exchange (``reply_to`` of
the task, ``hms.results``) in the format of docs/amqp-contract.md, section 3:

- ``"success"`` (or ``"completed"``, ``"ok"``, ``"done"``) or ``None`` → completed with output ``{}``;
- a ``dict`` → completed with that dict as the output;
- ``"fail"`` (or ``"failed"``, ``"error"``) → failed, not retryable: the step fails (its ``on_failure``);
- an exception → failed with ``"<ExceptionType>: <message>"`` as the reason, retryable, so the step's
  ``retry:`` decides (a step without ``retry:`` fails); raise ``TaskFailed(reason, retryable=False)`` to
  choose the reason and whether to retry.

Delivery: each task is acknowledged only after RabbitMQ confirmed the result (publisher confirms), so a
crash before that leaves the task in the queue to be delivered again. The task's ``message_id``
(``<task_id>#<attempt>``) is the idempotency key: a task delivered again to this process (after a lost
connection, or published twice) gets the result the handler gave the first time, without running the
handler again. Another process that receives it again runs its handler (hms-act keeps only the first result
of an attempt), so pass ``task.message_id`` to outside systems that take an idempotency key.

Traces: a task message carries a W3C ``traceparent`` (its dispatch span in hms-act's trace of the run), and
the result goes back with one, so hms-act's span of the result continues the same trace. With
``opentelemetry-api`` installed and a tracer provider configured (``opentelemetry-sdk`` and an exporter),
each handler runs in a span ``handle <topic>`` (kind consumer), a child of the task's dispatch span, and
the result carries that span's context; without it, the result carries the task's own ``traceparent``.

Configuration (environment): ``AMQP_URL`` (default the local stack's, ``scripts/stack env``),
``HMS_EXCHANGE_TASKS`` / ``HMS_EXCHANGE_RESULTS`` (default ``hms.tasks`` / ``hms.results``),
``HMS_ACT_PREFETCH`` (unacknowledged tasks per topic, default 1), ``HMS_ACT_AGENT`` (the name shown as
who did the task, default ``<topic>@<host>#<pid>``), ``HMS_ACT_AUTORUN``.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
import contextlib
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, TypeVar

from .errors import BrokerError

#: The local stack's broker as ``scripts/stack env`` prints it (``AMQP_URL``): the demo's RabbitMQ.
DEFAULT_AMQP_URL = "amqp://hms:hms-local@127.0.0.1:55672/%2f"
#: How many answered message ids a process remembers (the oldest are forgotten first).
REMEMBERED_RESULTS = 10_000

logger = logging.getLogger("hms_act.subscribe")

Handler = TypeVar("Handler", bound=Callable[..., Any])

_COMPLETED = {"success", "completed", "complete", "done", "ok"}
_FAILED = {"fail", "failed", "error"}


@dataclass
class PushedTask:
    """One delivery of an ``hms.task`` message (docs/amqp-contract.md, section 2): the same names as the
    pull worker's ``Task`` where they mean the same thing, plus the AMQP delivery's details."""

    id: str
    attempt: int
    run_id: str
    step_id: str
    payload: Any
    input: Any
    context: Any
    #: ``<task_id>#<attempt>``: the idempotency key of this attempt.
    message_id: str
    playbook: Optional[str]
    #: The step's label (``charge_fee``, ``ai.classifier``); ``agent`` the registry agent it was routed to.
    assignee: Optional[str]
    agent: Optional[str]
    #: The step's SLA deadline (RFC 3339), or ``None``.
    deadline: Optional[str]
    #: ``True`` for a ``compensate:`` task (``input`` then holds the output of the step being undone).
    compensation: bool
    #: RabbitMQ delivered this message before (to this or another consumer) without an acknowledgement.
    redelivered: bool
    message: Dict[str, Any] = field(repr=False)

    @classmethod
    def from_message(cls, message: Dict[str, Any], message_id: str, redelivered: bool) -> "PushedTask":
        return cls(id=message["task_id"], attempt=int(message["attempt"]), run_id=str(message.get("run_id", "")),
                   step_id=str(message.get("step_id", "")), payload=message.get("payload"),
                   input=message.get("input"), context=message.get("context"), message_id=message_id,
                   playbook=message.get("playbook"), assignee=message.get("assignee"), agent=message.get("agent"),
                   deadline=message.get("deadline"), compensation=bool(message.get("compensation", False)),
                   redelivered=redelivered, message=message)


class TaskFailed(Exception):
    """Raise it in a handler to fail the task with this ``reason``; ``retryable=False`` fails the step for
    good, ``True`` (the default) lets the step's ``retry:`` try again with a new attempt."""

    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass
class Subscription:
    """A handler and where its tasks come from."""

    topic: str
    handler: Callable[[PushedTask], Any]
    #: The durable queue consumed (default: the topic's label, e.g. ``charge_fee``).
    queue: str
    #: The binding key on the tasks exchange (default ``task.<label>``); empty: no binding.
    routing_key: str
    #: Who did the task, as shown in the run's timeline.
    agent: str


@dataclass
class _Answer:
    exchange: str
    routing_key: str
    body: Dict[str, Any]
    status: str
    traceparent: Optional[str] = None


def label(topic: str) -> str:
    """The assignee label hms-act routes by: a step id (``charge_fee``), an agent id (``ai.classifier``)
    or the chapters' ``AI:fraud-labeler`` / ``HUMAN:investigator`` / ``SVC:email-svc``."""
    if not isinstance(topic, str) or not topic.strip():
        raise ValueError("subscribe needs a topic: the step id of a step without actor (\"charge_fee\") "
                         "or an agent id (\"ai.classifier\")")
    topic = topic.strip()
    kind, colon, name = topic.partition(":")
    if colon:
        prefix = {"ai": "ai", "human": "human", "svc": "svc", "service": "svc"}.get(kind.strip().lower())
        if prefix is None or not name.strip():
            raise ValueError(f"topic {topic!r}: write a step id (\"charge_fee\"), an agent id (\"ai.classifier\") "
                             "or AI:name, HUMAN:name, SVC:name")
        return f"{prefix}.{name.strip()}"
    return topic


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _env_int(name: str, default: int, low: int, high: int) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValueError(f"{name}={text!r}: write a whole number from {low} to {high}")
    return value


class Subscriber:
    """Consumes the tasks of its subscriptions from RabbitMQ and answers them, one at a time, until
    ``stop()``, SIGTERM or SIGINT. The module's ``subscribe`` and ``run`` use a default one."""

    def __init__(self, amqp_url: Optional[str] = None, *, prefetch: Optional[int] = None,
                 tasks_exchange: Optional[str] = None, results_exchange: Optional[str] = None) -> None:
        self.amqp_url = amqp_url or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
        self.prefetch = prefetch if prefetch is not None else _env_int("HMS_ACT_PREFETCH", 1, 1, 1000)
        self.tasks_exchange = tasks_exchange or os.environ.get("HMS_EXCHANGE_TASKS") or "hms.tasks"
        self.results_exchange = results_exchange or os.environ.get("HMS_EXCHANGE_RESULTS") or "hms.results"
        self.subscriptions: List[Subscription] = []
        self._stopping = threading.Event()
        self._started = False
        self._answered: "collections.OrderedDict[str, _Answer]" = collections.OrderedDict()
        self._pending: Deque[Tuple[Subscription, Any, Any, bytes]] = collections.deque()
        self._connection: Any = None
        self._channel: Any = None

    # -- registration ---------------------------------------------------------------------------------

    def subscribe(self, topic: str, *, queue: Optional[str] = None, routing_key: Optional[str] = None,
                  agent: Optional[str] = None) -> Callable[[Handler], Handler]:
        """Decorator: ``handler(task)`` answers the tasks of ``topic`` (see the module's docstring).

        ``queue``: the durable queue to consume (default: the topic's label, which is also the queue to
        name in hms-act's ``agents/<label>.json`` to give the topic a queue of its own). ``routing_key``:
        the key it is bound with on the tasks exchange (default ``task.<label>``, where hms-act publishes
        the tasks of a topic that has no agent file; ``""`` binds nothing). ``agent``: the name recorded as
        who did the task (default ``HMS_ACT_AGENT`` or ``<label>@<host>#<pid>``).
        """
        name = label(topic)
        if queue is not None and not queue.strip():
            raise ValueError("queue must be a queue name; leave it out to use the topic's label")
        subscription_queue = queue or name
        key = f"task.{name}" if routing_key is None else routing_key
        who = agent or os.environ.get("HMS_ACT_AGENT") or f"{name}@{socket.gethostname()}#{os.getpid()}"

        def register(handler: Handler) -> Handler:
            if not callable(handler):
                raise TypeError(f"@subscribe({topic!r}) decorates a function taking the task, not {handler!r}")
            if any(s.queue == subscription_queue for s in self.subscriptions):
                raise ValueError(f"queue {subscription_queue!r} already has a handler in this process; "
                                 "one handler per queue")
            self.subscriptions.append(Subscription(name, handler, subscription_queue, key, who))
            return handler

        return register

    # -- running --------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Asks ``run`` to return after the task in hand (thread-safe; what SIGTERM and SIGINT do)."""
        self._stopping.set()

    def run(self) -> None:
        """Consumes until ``stop()``, SIGTERM or SIGINT, then returns after answering the task in hand.

        Raises ``BrokerError`` when RabbitMQ cannot be reached at the start, refuses the credentials, or
        refuses the queues (the message says what to change). Once connected, a lost connection is retried
        with backoff (0.5 s doubling to 30 s) for as long as it takes.
        """
        if not self.subscriptions:
            raise ValueError("nothing to run: decorate a handler with @subscribe(\"topic\") first")
        self._started = True
        self._stopping.clear()
        _ensure_log_output()
        restore = self._install_signal_handlers()
        try:
            self._loop()
        finally:
            self._disconnect()
            for signum, previous in restore:
                signal.signal(signum, previous)
        logger.info("stopped")

    def _loop(self) -> None:
        connected_once = False
        delay = 0.5
        while not self._stopping.is_set():
            try:
                self._connect()
            except Exception as error:  # pika's connection errors, socket errors, a refused declaration
                self._disconnect()
                if not connected_once:
                    raise (error if isinstance(error, BrokerError) else self._unreachable(error)) from None
                # Once it worked, anything may be temporary (a broker restarting, hms-act not yet back to
                # declare its exchanges): keep trying.
                logger.warning("cannot reconnect to %s (%s); next try in %.1fs", redact(self.amqp_url),
                               _describe(error), delay)
                self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not connected_once:
                self._announce()
            connected_once = True
            delay = 0.5
            try:
                self._serve()
            except BrokerError:
                raise
            except Exception as error:
                if not _is_connection_loss(error):
                    raise
                logger.warning("lost the connection to %s (%s); reconnecting in %.1fs; the task in hand "
                               "comes again and gets its result without running the handler again",
                               redact(self.amqp_url), _describe(error), delay)
                self._disconnect()
                self._sleep(delay * (0.75 + random.random() / 2))
                delay = min(delay * 2, 30.0)

    def _connect(self) -> None:
        try:
            import pika
        except ImportError:
            raise BrokerError("hms_act.subscribe needs pika, RabbitMQ's Python client: pip install 'pika>=1.3.2,<2' "
                              "(pip install ./clients/python installs it)") from None

        parameters = pika.URLParameters(self.amqp_url)
        parameters.client_properties = {"connection_name": f"hms_act.subscribe {os.getpid()} "
                                        + ",".join(s.topic for s in self.subscriptions)}
        self._pending.clear()
        self._connection = pika.BlockingConnection(parameters)
        channel = self._connection.channel()
        self._declare(channel)
        channel = self._channel  # _declare may have replaced it after a passive check failed
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=self.prefetch)
        for subscription in self.subscriptions:
            channel.basic_consume(subscription.queue, self._on_delivery(subscription))

    def _declare(self, channel: Any) -> None:
        import pika.exceptions

        self._channel = channel
        try:
            channel.exchange_declare(self.tasks_exchange, passive=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            raise BrokerError(
                f"exchange {self.tasks_exchange!r} does not exist on {redact(self.amqp_url)} ({error.reply_text}); "
                "start hms-act once (`hms-act serve` declares it) or import deploy/rabbitmq/definitions.json, "
                "and check HMS_EXCHANGE_TASKS") from None
        for subscription in self.subscriptions:
            try:
                self._channel.queue_declare(subscription.queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as error:
                if error.reply_code != 404:
                    raise self._refused(error, f"checking queue {subscription.queue!r}") from None
                self._channel = self._connection.channel()
                try:
                    self._channel.queue_declare(subscription.queue, durable=True)
                except pika.exceptions.ChannelClosedByBroker as refused:
                    raise self._refused(refused, f"declaring queue {subscription.queue!r}") from None
            if subscription.routing_key:
                try:
                    self._channel.queue_bind(subscription.queue, self.tasks_exchange,
                                             routing_key=subscription.routing_key)
                except pika.exceptions.ChannelClosedByBroker as refused:
                    raise self._refused(refused, f"binding queue {subscription.queue!r} to {self.tasks_exchange} "
                                                 f"with {subscription.routing_key!r}") from None

    def _on_delivery(self, subscription: Subscription) -> Callable[..., None]:
        def on_delivery(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            self._pending.append((subscription, method, properties, body))
        return on_delivery

    def _serve(self) -> None:
        while not self._stopping.is_set():
            if not self._pending:
                self._connection.process_data_events(time_limit=0.25)
                continue
            subscription, method, properties, body = self._pending.popleft()
            self._handle(subscription, method, properties, body)

    def _handle(self, subscription: Subscription, method: Any, properties: Any, body: bytes) -> None:
        import pika
        import pika.exceptions

        try:
            message = json.loads(body)
            task_id, attempt = message["task_id"], int(message["attempt"])
            if not isinstance(task_id, str) or not task_id:
                raise ValueError("task_id")
        except (ValueError, KeyError, TypeError):
            logger.error("✘ %s: a message that is not an hms.task (no task_id/attempt; message_id %s): rejected "
                         "(dead-lettered to hms.dead)", subscription.queue, properties.message_id)
            self._channel.basic_reject(method.delivery_tag, requeue=False)
            return
        message_id = properties.message_id or f"{task_id}#{attempt}"
        answer = self._answered.get(message_id)
        if answer is None:
            task = PushedTask.from_message(message, message_id, bool(method.redelivered))
            headers = properties.headers if isinstance(properties.headers, dict) else {}
            traceparent = headers.get("traceparent")
            with _continued_trace(traceparent if isinstance(traceparent, str) else None, subscription, task) \
                    as (span, traceparent_out):
                answer = self._call(subscription, task)
                answer.traceparent = traceparent_out
                if span is not None and answer.status == "failed":
                    from opentelemetry.trace import Status, StatusCode
                    span.set_status(Status(StatusCode.ERROR, str(answer.body.get("reason"))))
            self._remember(message_id, answer)
        else:
            logger.info("↻ %s: answered before in this process; sending the same result (%s) again without "
                        "running %s", message_id, answer.status, _name(subscription.handler))
        result = json.dumps(answer.body, separators=(",", ":"), sort_keys=True).encode()
        properties_out = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, type="hms.task.result",
            message_id=f"{message_id}/{answer.status}", correlation_id=message.get("run_id"),
            timestamp=int(time.time()), app_id="hms-act-python", user_id=self._user_id(),
            headers={"traceparent": answer.traceparent} if answer.traceparent else None)
        try:
            self._channel.basic_publish(answer.exchange, answer.routing_key, result, properties_out, mandatory=True)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as error:
            why = ("nothing is bound to it: is hms-act running (queue hms-act.results)?"
                   if isinstance(error, pika.exceptions.UnroutableError) else "RabbitMQ refused it (nack)")
            logger.warning("✘ %s: the result to %s %s was not taken, %s; the task goes back to the queue "
                           "and its result is sent again", message_id, answer.exchange, answer.routing_key, why)
            self._channel.basic_nack(method.delivery_tag, requeue=True)
            self._connection.sleep(1.0)
            return
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code in (403, 404):
                raise self._refused(error, f"publishing the result to {answer.exchange!r} "
                                           f"with {answer.routing_key!r}") from None
            raise
        self._channel.basic_ack(method.delivery_tag)  # only now: the result is confirmed
        shown = answer.body.get("output") if answer.status == "completed" else answer.body.get("reason")
        logger.info("%s %s %s by %s → %s", "✔" if answer.status == "completed" else "✖", message_id,
                    answer.status, answer.body.get("agent"), json.dumps(shown, ensure_ascii=False, default=str))

    def _call(self, subscription: Subscription, task: PushedTask) -> _Answer:
        given = task.message.get("reply_to")
        reply: Dict[str, Any] = given if isinstance(given, dict) else {}
        exchange = reply.get("exchange") or self.results_exchange
        routing_key = reply.get("routing_key") or f"result.{task.assignee or subscription.topic}"
        body: Dict[str, Any] = {"task_id": task.id, "attempt": task.attempt, "agent": subscription.agent}
        try:
            returned = subscription.handler(task)
        except TaskFailed as failure:
            body.update(status="failed", reason=failure.reason or "failed", retryable=bool(failure.retryable))
            return _Answer(exchange, routing_key, body, "failed")
        except Exception as error:  # the handler's bug or an outside system's failure: the task fails
            logger.exception("%s raised on %s", _name(subscription.handler), task.message_id)
            text = str(error)
            body.update(status="failed", reason=f"{type(error).__name__}: {text}" if text else type(error).__name__,
                        retryable=True)
            return _Answer(exchange, routing_key, body, "failed")
        if returned is None or (isinstance(returned, str) and returned.strip().lower() in _COMPLETED):
            body.update(status="completed", output={})
        elif isinstance(returned, str) and returned.strip().lower() in _FAILED:
            body.update(status="failed", reason=f"{_name(subscription.handler)} returned {returned!r}",
                        retryable=False)
        elif isinstance(returned, dict):
            try:
                json.dumps(returned)
            except (TypeError, ValueError) as error:
                body.update(status="failed", retryable=False,
                            reason=f"{_name(subscription.handler)} returned an output that is not JSON ({error}); "
                                   "return str, int, float, bool, None, lists and dicts only")
            else:
                body.update(status="completed", output=returned)
        else:
            body.update(status="failed", retryable=False,
                        reason=f"{_name(subscription.handler)} returned {returned!r}; return \"success\", \"fail\", "
                               "a dict (the output) or None")
        return _Answer(exchange, routing_key, body, body["status"])

    def _remember(self, message_id: str, answer: _Answer) -> None:
        self._answered[message_id] = answer
        while len(self._answered) > REMEMBERED_RESULTS:
            self._answered.popitem(last=False)

    # -- helpers --------------------------------------------------------------------------------------

    def _announce(self) -> None:
        for s in self.subscriptions:
            bound = f", bound to {self.tasks_exchange} with {s.routing_key}" if s.routing_key else ""
            logger.info("%s: %s answers the tasks of queue %s%s, as %s", s.topic, _name(s.handler), s.queue,
                        bound, s.agent)
        logger.info("connected to %s; SIGTERM or Ctrl-C stops after the task in hand", redact(self.amqp_url))

    def _user_id(self) -> Optional[str]:
        # RabbitMQ checks `user_id` against the connection's user, so it cannot be forged; hms-act's
        # `amqp.actors` attributes results by it. Only plain credentials name the user.
        return urllib.parse.unquote(urllib.parse.urlsplit(self.amqp_url).username or "") or None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._pending.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()  # unacknowledged deliveries go back to their queues
            except Exception:
                pass

    def _unreachable(self, error: BaseException) -> BrokerError:
        import pika.exceptions

        where = redact(self.amqp_url)
        if isinstance(error, (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)):
            return BrokerError(f"RabbitMQ at {where} refused the user name or password ({_describe(error)}); "
                               "set AMQP_URL to a user's URL (the local stack's: eval \"$(scripts/stack env)\")")
        if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
            return BrokerError(f"RabbitMQ at {where} refused access to the virtual host ({_describe(error)}); "
                               "check the vhost at the end of AMQP_URL (%2f is /) and the user's permissions")
        return BrokerError(f"cannot connect to RabbitMQ at {where} ({_describe(error)}); is it running? Set "
                           "AMQP_URL to its address, e.g. AMQP_URL=amqp://user:password@host:5672/%2f (the local "
                           "stack: scripts/stack up, then eval \"$(scripts/stack env)\")")

    def _refused(self, error: Any, doing: str) -> BrokerError:
        hint = {
            403: "the user of AMQP_URL may not do this: give it configure, write and read on the queue and read "
                 "on the tasks exchange (deploy/rabbitmq/create-users.sh worker USER --queue QUEUE), or pick a "
                 "queue it may use with subscribe(..., queue=...)",
            404: "it does not exist: start hms-act once (it declares its exchanges) or import "
                 "deploy/rabbitmq/definitions.json",
            406: "the queue exists with other arguments (e.g. quorum): subscribe(..., queue=...) another name, "
                 "or delete the queue",
        }.get(getattr(error, "reply_code", 0), "see RabbitMQ's log")
        return BrokerError(f"{doing} on {redact(self.amqp_url)} failed: {_describe(error)}; {hint}")

    def _install_signal_handlers(self) -> List[Tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []  # only the main thread may; stop() still works
        restore: List[Tuple[int, Any]] = []

        def on_signal(signum: int, frame: Any) -> None:
            if self._stopping.is_set():
                logger.warning("%s again: exiting now; the task in hand goes back to the queue",
                               signal.Signals(signum).name)
                raise SystemExit(128 + signum)
            logger.info("%s: stopping after the task in hand", signal.Signals(signum).name)
            self._stopping.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            restore.append((signum, signal.signal(signum, on_signal)))
        return restore


@contextlib.contextmanager
def _continued_trace(traceparent: Optional[str], subscription: Subscription, task: PushedTask):
    """The handler's span, a child of the task's ``traceparent``, and the ``traceparent`` its result carries.

    Without opentelemetry-api (or without a ``traceparent``) there is no span, and the result carries the
    task's own ``traceparent``; with the API but no SDK configured the span records nothing and the result
    again carries the task's context."""
    if traceparent is None:
        yield None, None
        return
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        yield None, traceparent
        return
    tracer = trace.get_tracer("hms_act")
    attributes = {"messaging.system": "rabbitmq", "messaging.operation.type": "process",
                  "messaging.destination.name": subscription.queue, "messaging.message.id": task.message_id,
                  "hms.run_id": task.run_id or "", "hms.step_id": task.step_id or "", "hms.task_id": task.id,
                  "hms.attempt": task.attempt}
    with tracer.start_as_current_span(f"handle {subscription.topic}", context=propagate.extract({"traceparent": traceparent}),
                                      kind=trace.SpanKind.CONSUMER, attributes=attributes) as span:
        carrier: Dict[str, str] = {}
        propagate.inject(carrier)
        yield span, carrier.get("traceparent", traceparent)


def _describe(error: BaseException) -> str:
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}" if type(error).__name__ not in text else text


def _name(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None) or repr(handler)


def _is_connection_loss(error: BaseException) -> bool:
    import pika.exceptions

    return isinstance(error, (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed,
                              pika.exceptions.ChannelWrongStateError, pika.exceptions.ConsumerCancelled,
                              pika.exceptions.StreamLostError, ConnectionError, OSError))


def _ensure_log_output() -> None:
    """Shows the worker's lines on standard error unless the application configured logging itself."""
    if logging.getLogger().handlers or logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hms_act.subscribe: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


# -- the default subscriber and the script-ends-then-work hook ------------------------------------------

_default: Optional[Subscriber] = None
_default_lock = threading.Lock()
_hook_registered = False


def _subscriber() -> Subscriber:
    global _default
    with _default_lock:
        if _default is None:
            _default = Subscriber()
        return _default


def subscribe(topic: str, *, queue: Optional[str] = None, routing_key: Optional[str] = None,
              agent: Optional[str] = None) -> Callable[[Handler], Handler]:
    """Decorator: ``handler(task)`` answers the tasks hms-act publishes for ``topic`` (a step id of a
    step without actor, such as ``"charge_fee"``, or an agent id). See ``Subscriber.subscribe`` for the
    options and this module's docstring for results, delivery and how the script starts working."""
    register = _subscriber().subscribe(topic, queue=queue, routing_key=routing_key, agent=agent)

    def decorate(handler: Handler) -> Handler:
        global _hook_registered
        register(handler)
        if getattr(handler, "__module__", None) == "__main__" and not _hook_registered:
            _hook_registered = True
            atexit.register(_run_when_the_script_ends)
        return handler

    return decorate


def run() -> None:
    """Runs the handlers registered with ``@subscribe`` until SIGTERM or SIGINT (see ``Subscriber.run``).
    A script that calls it is not started again when it ends."""
    _subscriber().run()


def stop() -> None:
    """Makes ``run()`` return after the task in hand (from another thread or a handler)."""
    _subscriber().stop()


def _run_when_the_script_ends() -> None:
    subscriber = _default
    if subscriber is None or subscriber._started or not subscriber.subscriptions:
        return
    if os.environ.get("HMS_ACT_AUTORUN", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if getattr(sys, "last_value", None) is not None or hasattr(sys, "ps1") or sys.flags.interactive:
        return  # the script raised (its traceback is printed) or this is an interactive session
    try:
        subscriber.run()
    except SystemExit as exit_:
        _exit(exit_.code if isinstance(exit_.code, int) else 1)
    except BrokerError as error:
        print(f"hms_act.subscribe: {error}", file=sys.stderr)
        _exit(1)
    except BaseException:
        import traceback

        traceback.print_exc()
        _exit(1)


def _exit(code: int) -> None:
    # An exception in an atexit hook would leave the exit status 0: leave with the status instead.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


__all__ = ["PushedTask", "Subscriber", "Subscription", "TaskFailed", "subscribe", "run", "stop",
           "DEFAULT_AMQP_URL"]
