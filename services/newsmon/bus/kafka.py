"""The Kafka engine (aiokafka): idempotent producer with acks=all, consumer groups with manual commits.

Topics are created (idempotently, through the admin client) at start and on first use, with `partitions`
partitions. Every aiokafka error is translated to BusError here; a commit refused because the group rebalanced
is a non-retriable BusError (the messages go to the partition's new owner, at least once). `start()` first
reaches a broker itself (`reach`): no broker answering is retriable (the runtime waits for it at start-up),
a broker refusing us (credentials, TLS, a listener that wants SASL) is not.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaConnectionError, KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import OffsetAndMetadata

from newsmon import log
from newsmon.bus.base import Consumer, Message, Outgoing
from newsmon.errors import BusError, ConfigError

if TYPE_CHECKING:
    from newsmon.settings import BusSettings

_log = log.get(__name__)

TOPIC_ALREADY_EXISTS = 36
JOIN_TIMEOUT = 60.0  # seconds a new consumer waits for its first assignment
REACH_TIMEOUT_MS = 10_000  # the start-up probe's connect + handshake timeout
_CREDENTIALS = "check bus.url, and bus.security_protocol and the sasl_*/ssl_* credentials if the cluster needs them"


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Turn aiokafka/network errors into BusError; a rebalance-refused commit is not retriable."""
    try:
        yield
    except (CommitFailedError, IllegalStateError) as exc:
        err = BusError(f"kafka {what}: {exc}")
        err.retriable = False
        raise err from exc
    except KafkaConnectionError as exc:
        # aiokafka logs why (refused, timed out, SaslAuthenticationFailed) and raises only "Unable to bootstrap"
        raise BusError(f"kafka {what}: {exc} — {_CREDENTIALS} (the aiokafka log line above says why)") from exc
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BusError(f"kafka {what}: {exc!r}") from exc


def parse_hosts(servers: Sequence[str]) -> list[tuple[str, int]]:
    """(host, port) of each bootstrap server ('host:port', '[v6]:port'; port 9092 when absent); ConfigError else."""
    hosts = []
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
            host, port = server, "9092"
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/@ "):
            raise ConfigError(f"bus.url: {server!r} is not HOST:PORT")
        hosts.append((host, int(port)))
    return hosts


def refused(exc: BaseException) -> bool:
    """True when the broker answered but would not let us in (credentials, SASL mechanism, TLS): not an outage."""
    if isinstance(exc, ssl.SSLError):
        return not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError)  # these two: the peer hung up
    if isinstance(exc, KafkaError):
        return not exc.retriable and not isinstance(exc, KafkaConnectionError)
    return False


def connection_options(settings: BusSettings) -> dict[str, Any]:
    """aiokafka client options for the configured security protocol (TLS context, SASL credentials)."""
    opts: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        try:
            opts["ssl_context"] = create_ssl_context(
                cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
                certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
                keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None)
        except (OSError, ssl.SSLError) as exc:  # a missing file or a bad PEM: the operator's to fix
            raise ConfigError(f"bus.ssl_*: cannot load the TLS files: {exc}") from None
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_password is not None  # the settings validator makes sure
        opts.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                    sasl_plain_password=settings.sasl_password.get_secret_value())
    return opts


class KafkaBus:
    """Publishes with an idempotent producer; `consumer()` joins a consumer group."""

    def __init__(self, bootstrap_servers: Sequence[str], *, partitions: int = 4, replication_factor: int = 1,
                 client_id: str = "newsmon", topics: Sequence[str] = (),
                 session_timeout: float = 10.0, connection: dict[str, Any] | None = None) -> None:
        self.bootstrap = ",".join(bootstrap_servers)
        self.hosts = parse_hosts(bootstrap_servers)
        # security_protocol, sasl_*, ssl_context: the same for the producer, the consumers and the admin client
        self.connection = dict(connection or {})
        self.partitions, self.replication_factor, self.client_id = partitions, replication_factor, client_id
        self.session_timeout = session_timeout
        self._initial_topics = list(topics)
        self._known: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect (BusError: `retriable` when no broker answered, not when one refused us), create topics."""
        await self.reach()
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all",
                                    enable_idempotence=True, **self.connection)
        async with translated("producer start"):
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
        self._producer = producer
        await self.ensure_topics(self._initial_topics)

    async def reach(self) -> None:
        """Open (and close) one connection to a bootstrap server, handshake and authentication included.

        aiokafka's own bootstrap logs each host's error and raises only "Unable to bootstrap", which cannot tell
        a broker that is down (wait for it) from one that refuses our credentials (fail now); this can.
        """
        errors: list[str] = []
        denied = False
        for host, port in self.hosts:
            try:
                conn = await create_conn(host, port, client_id=self.client_id, request_timeout_ms=REACH_TIMEOUT_MS,
                                         **self.connection)
            except (OSError, TimeoutError, KafkaError) as exc:
                denied = denied or refused(exc)
                errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            try:  # a listener that wants SASL or TLS answers ApiVersions, then hangs up on anything else
                await conn.send(MetadataRequest([]))
                return
            except KafkaConnectionError:
                denied = True
                errors.append(f"{host}:{port}: the broker closed the connection when asked for metadata "
                              f"(security_protocol {self.connection.get('security_protocol', 'PLAINTEXT')})")
            except (TimeoutError, KafkaError) as exc:
                errors.append(f"{host}:{port}: metadata: {type(exc).__name__}: {exc}".rstrip(": "))
            finally:
                conn.close()
        if denied:
            err = BusError(f"kafka refused the connection ({'; '.join(errors)}) — {_CREDENTIALS}")
            err.retriable = False
            raise err
        raise BusError(f"kafka is unreachable ({'; '.join(errors)})")

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            async with translated("producer stop"):
                await producer.stop()

    async def ping(self) -> bool:
        try:
            async with self._admin() as admin:
                return bool((await admin.describe_cluster()).get("brokers"))
        except BusError:
            return False

    async def publish(self, topic: str, value: bytes, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Send and wait for the acknowledgement of all in-sync replicas."""
        if self._producer is None:
            raise BusError("kafka bus is not started")
        await self.ensure_topics([topic])
        async with translated(f"publish to {topic}"):
            await self._producer.send_and_wait(topic, value, key=key, headers=list(headers) or None)

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Hand every message to the producer, then wait for all their acknowledgements.

        On a refusal (a message over max_request_size is refused at send(), before it is queued) the messages
        already queued are still waited for, so none is left unobserved, and then BusError is raised: those may
        be on the topic (the caller publishes the whole batch again: at least once).
        """
        if self._producer is None:
            raise BusError("kafka bus is not started")
        if not messages:
            return
        await self.ensure_topics([topic])
        producer = self._producer
        sent: list[asyncio.Future[Any]] = []
        async with translated(f"publish {len(messages)} messages to {topic}"):
            try:
                for m in messages:
                    sent.append(await producer.send(topic, m.value, key=m.key, headers=list(m.headers) or None))
            except Exception:
                if sent:  # wait for the queued ones (without cancelling aiokafka's futures), then raise
                    await asyncio.wait(sent)
                    for fut in sent:
                        _ = fut.cancelled() or fut.exception()  # observed: no "exception never retrieved"
                raise
            await asyncio.wait(sent)
            errors = [exc for fut in sent if not fut.cancelled() and (exc := fut.exception()) is not None]
            if errors:  # each one observed above, the first one raised
                raise errors[0]
            if any(fut.cancelled() for fut in sent):
                raise BusError(f"kafka publish to {topic}: the producer stopped before every acknowledgement")

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        return KafkaConsumer(self, list(topics), group)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics not seen yet; 'already exists' is success."""
        missing = [t for t in dict.fromkeys(topics) if t not in self._known]
        if not missing:
            return
        async with self._topic_lock, self._admin() as admin, translated("create topics"):
            response: Any = await admin.create_topics(
                [NewTopic(t, self.partitions, self.replication_factor) for t in missing])
            for topic, code, message in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise BusError(f"kafka create topic {topic}: error {code}: {message}")
                self._known.add(topic)

    @asynccontextmanager
    async def _admin(self) -> AsyncIterator[AIOKafkaAdminClient]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin",
                                    **self.connection)
        async with translated("admin"):
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
        try:
            yield admin
        finally:
            await admin.close()


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Sets an event after every rebalance, so start() returns only once the member has joined."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.joined = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        _log.info("bus.assigned", group=self.group,
                  partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        self.joined.set()


class KafkaConsumer:
    """A consumer-group member; offsets are committed only through commit()."""

    def __init__(self, bus: KafkaBus, topics: list[str], group: str) -> None:
        self.bus, self.topics, self.group = bus, topics, group
        self._consumer, self._listener = self._new()
        self._fresh = True  # False once started: aiokafka consumers are not started twice

    def _new(self) -> tuple[AIOKafkaConsumer, _Assigned]:
        session_ms = int(self.bus.session_timeout * 1000)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bus.bootstrap, client_id=self.bus.client_id, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 4), **self.bus.connection)
        return consumer, _Assigned(self.group)

    async def start(self) -> None:
        """Join the group; returns after the first assignment (empty when members outnumber partitions).

        A start that failed can be tried again (the start-up wait does): each try gets a fresh aiokafka consumer.
        """
        if not self._fresh:
            self._consumer, self._listener = self._new()
        self._fresh = False
        await self.bus.ensure_topics(self.topics)
        try:
            async with translated(f"consumer start ({self.group})"):
                await self._consumer.start()
                self._consumer.subscribe(self.topics, listener=self._listener)
            try:  # aiokafka joins in a background task; wait, so lag() and until_idle see our partitions
                await asyncio.wait_for(self._listener.joined.wait(), JOIN_TIMEOUT)
            except TimeoutError:
                raise BusError(f"kafka group {self.group}: no assignment in {JOIN_TIMEOUT:.0f}s") from None
        except BaseException:
            await self._consumer.stop()
            raise

    async def stop(self) -> None:
        """Leave the group (uncommitted messages go to the next owner)."""
        async with translated(f"consumer stop ({self.group})"):
            try:
                await self._consumer.stop()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # aiokafka (0.14) re-raises, from stop(), the cancellation of a fetch it was retrying while the
                # broker was unreachable, before closing its connections: a service stopping during a broker
                # restart then died with a traceback instead of its real error. Close them and carry on.
                _log.warning("bus.consumer_stop_interrupted", group=self.group)
                await self._consumer._client.close()

    async def getmany(self, timeout: float = 1.0, max_records: int = 100) -> list[Message]:
        async with translated(f"fetch ({self.group})"):
            batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        return [Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp,
                        tuple((k, bytes(v)) for k, v in (r.headers or ())))
                for records in batches.values() for r in records]

    async def commit(self, messages: Sequence[Message]) -> None:
        """Commit the offset after the last given message of each partition."""
        offsets: dict[TopicPartition, int] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
        if offsets:
            async with translated(f"commit ({self.group})"):
                await self._consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})

    async def lag(self) -> int:
        """End offsets minus the group's committed offsets, over this member's partitions."""
        assigned = list(self._consumer.assignment())
        async with translated(f"lag ({self.group})"):
            # The high watermark of the last fetch costs no request; asking the broker (ListOffsets) would
            # queue behind the fetcher's long poll on the same connection.
            ends = {tp: self._consumer.highwater(tp) for tp in assigned}
            unknown = [tp for tp, end in ends.items() if end is None]
            if unknown:
                ends.update(await self._consumer.end_offsets(unknown))
            committed = {tp: await self._consumer.committed(tp) for tp in assigned}
            never = [tp for tp, c in committed.items() if c is None]
            if never:
                committed.update(await self._consumer.beginning_offsets(never))
        return sum(max(0, (ends[tp] or 0) - (committed[tp] or 0)) for tp in assigned)
