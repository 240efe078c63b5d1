"""Conversations on a running `chorus serve`: inbound to routed in the inbox stream, and a
queue drain meeting freed capacity.

`latency`: 50 agents in two teams, 2,000 open conversations (their customers wrote first), then
inbound `message.received` signals POSTed to `/v1/events` at a steady 200/s, one a request as a
provider's webhook would, each from a known customer without a conversation yet. A client on
`GET /v1/conversations/stream` times each conversation's first appearance routed (a team on it:
assigned to an agent or queued), from the client's clock just before its POST. The raw baseline
is the same POSTs' answers (the signal committed to the log, nothing threaded yet), same run.

`drain`: 1,000 conversations wait in a team's queue while its 50 agents are away; the 50 become
available at once (one `PUT /v1/agents/{key}/presence` each, concurrently). The figure is the
time from the first PUT until every conversation is assigned. A watcher samples `agent_loads`
against each agent's capacity all the while; afterwards the bench counts `Assigned` events per
conversation. The raw baseline is 1,000 one-row commits, one after another, on the same server:
a drain commits each offer on its own.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import httpx
import msgspec

from bench.ingest_nats import delete_streams
from bench.servers import fresh_database
from bench.service import ChorusService

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.servers import Servers

__all__ = ["TARGET_P99_MS", "ConversationsConfig", "latency_on_service", "run_conversations"]

TARGET_P99_MS = 250.0
_BEHIND = """
SELECT count(*) FROM projection_positions p,
    (SELECT transaction_id, position FROM events
     ORDER BY transaction_id DESC, position DESC LIMIT 1) e
WHERE (p.transaction_id, p.position) < (e.transaction_id, e.position)
"""
_OVER_CAPACITY = """
SELECT coalesce(max(l.held - coalesce((a.capacity ->> l.kind)::integer, 0)), -1)
FROM agent_loads l JOIN conversation_agents a ON a.key = l.agent
"""
_ASSIGNED_EACH = """
SELECT stream_id, count(*) AS n FROM events
WHERE topic LIKE '%Conversation.Assigned' GROUP BY stream_id
"""
_TEXTS = (
    "I want a refund for my last order",
    "Where is my delivery? It is late",
    "My billing address is wrong",
    "How do I change my account email?",
)
_ROUTING: dict[str, Any] = {
    "default_team": "support",
    "rules": [{"id": "money", "intents": ["refund", "billing"], "team": "billing"}],
}


@dataclass(frozen=True, slots=True)
class ConversationsConfig:
    agents: int = 50
    open_conversations: int = 2_000  # open before the steady rate starts
    agent_chat_capacity: int = 50  # 2,500 places: the 2,000 open ones hold most of them
    rate: int = 200  # inbound messages per second
    seconds: float = 10.0
    queued: int = 1_000  # waiting when capacity frees
    drain_capacity: int = 20  # each agent's chat capacity in the drain: 50 x 20 = 1,000 places
    watch_interval: float = 0.005  # seconds between the watcher's load samples


class _Event(msgspec.Struct):
    customer_id: uuid.UUID
    team: str | None = None
    agent: str | None = None


def _email(n: int) -> str:
    return f"conv{n}@example.org"


def _message(n: int, at: str) -> dict[str, Any]:
    return {
        "id": f"inbound-{n}",
        "type": "message.received",
        "occurred_at": at,
        # A chat message comes from an account (the edge refuses a channel none of the
        # signal's identities writes on); the email finds the customer `_known` made.
        "identities": [
            {"type": "email", "value": _email(n)},
            {"type": "account_id", "value": f"conv-{n}"},
        ],
        "properties": {"channel": "chat", "text": _TEXTS[n % len(_TEXTS)]},
    }


def _known(n: int, at: str) -> dict[str, Any]:
    return {
        "id": f"known-{n}",
        "type": "app.opened",
        "occurred_at": at,
        "identities": [{"type": "email", "value": _email(n)}],
        "properties": {},
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a living process, from /proc (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _family(pid: int) -> list[int]:
    """The process and its descendants (the service's projection worker)."""
    found, i = [pid], 0
    while i < len(found):
        for task in Path(f"/proc/{found[i]}/task").glob("*/children"):
            found.extend(int(child) for child in task.read_text().split())
        i += 1
    return found


async def _cpu_by_pid(service: ChorusService, dsn: str) -> dict[tuple[str, int], float]:
    """CPU seconds so far of the service (its API process, its projection worker and anything
    else it started) and of the PostgreSQL backends of its database (the same machine's)."""
    assert service.process is not None
    conn = await asyncpg.connect(dsn)
    try:
        backends = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    api, *workers = _family(service.process.pid)
    parts = [("api", api), *(("worker", pid) for pid in workers)]
    parts += [("postgres", row["pid"]) for row in backends]
    return {(part, pid): _cpu_seconds(pid) for part, pid in parts}


def _cpu_spent(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]
) -> dict[str, float]:
    spent: dict[str, float] = {"api": 0.0, "worker": 0.0, "postgres": 0.0}
    for (part, pid), seconds in after.items():
        spent[part] += seconds - before.get((part, pid), 0.0)
    return spent


_DATABASE_WORK = """
SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database
WHERE datname = current_database()
"""


_TABLE_WORK = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS written FROM pg_stat_user_tables
"""


async def _database_work(dsn: str) -> tuple[int, int, dict[str, int]]:
    """Transactions committed so far in the database, rows written, and rows written by table
    (PostgreSQL's counters, which backends report at most once a second: read them a second
    after the work)."""
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.sleep(1.1)
        row = await conn.fetchrow(_DATABASE_WORK)
        tables = {r["relname"]: r["written"] for r in await conn.fetch(_TABLE_WORK)}
    finally:
        await conn.close()
    assert row is not None
    return row[0], row[1], tables


def _written_by_table(
    before: dict[str, int], after: dict[str, int], messages: int
) -> dict[str, float]:
    """Rows written a message in each table that was written to, the most first."""
    written = {name: (rows - before.get(name, 0)) / messages for name, rows in after.items()}
    ranked = sorted(written.items(), key=lambda item: -item[1])
    return {name: round(rows, 2) for name, rows in ranked if rows >= 0.01}


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q + 0.5) - 1)]


async def _caught_up(dsn: str, give_up_after: float) -> float:
    """Seconds until every projection and process has reached the end of the log."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while await conn.fetchval(_BEHIND):
            if time.monotonic() - started > give_up_after:
                raise RuntimeError(f"the projections did not catch up in {give_up_after:.0f} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - started
    finally:
        await conn.close()


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return response


async def _desk(http: httpx.AsyncClient, config: ConversationsConfig, capacity: int) -> list[str]:
    """Agents (offline until told), the `support` and `billing` teams sharing them half and
    half, and the routing document; returns the agents' keys."""
    keys = [f"agent-{n:02d}" for n in range(config.agents)]
    for team, name in (("support", "Support"), ("billing", "Billing")):
        _ok(await http.post("/v1/teams", json={"key": team, "name": name, "skills": []}))
    for n, key in enumerate(keys):
        body = {"key": key, "name": f"Agent {n}", "skills": [], "capacity": {"chat": capacity}}
        _ok(await http.post("/v1/agents", json=body))
        team = "support" if n % 2 == 0 else "billing"
        _ok(await http.put(f"/v1/teams/{team}/members/{key}"))
    _ok(await http.put("/v1/routing", json=_ROUTING))
    return keys


async def _available(http: httpx.AsyncClient, keys: Sequence[str]) -> None:
    async def put(key: str) -> None:
        _ok(await http.put(f"/v1/agents/{key}/presence", json={"presence": "available"}))

    await asyncio.gather(*(put(key) for key in keys))


async def _post_all(http: httpx.AsyncClient, signals: list[dict[str, Any]]) -> None:
    for i in range(0, len(signals), 500):
        _ok(await http.post("/v1/events", json={"signals": signals[i : i + 500]}))


async def _customer_ids(dsn: str, numbers: range) -> dict[uuid.UUID, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT value, customer_id FROM identities WHERE type = 'email' AND value = ANY($1)",
            [_email(n) for n in numbers],
        )
    finally:
        await conn.close()
    found = {row["customer_id"]: int(row["value"][4:].split("@")[0]) for row in rows}
    if len(found) != len(numbers):
        raise RuntimeError(f"{len(found)} of {len(numbers)} customers known")
    return found


class _Watcher:
    """An SSE client on the inbox stream noting when each awaited customer's conversation
    first comes routed."""

    def __init__(self, awaited: dict[uuid.UUID, int]) -> None:
        self.awaited = awaited
        self.arrived: dict[int, float] = {}
        self.opened = asyncio.Event()
        self.done = asyncio.Event()
        self._decode = msgspec.json.Decoder(_Event).decode

    async def follow(self, http: aiohttp.ClientSession) -> None:
        headers = {"Accept": "text/event-stream"}
        async with http.get("/v1/conversations/stream", headers=headers) as stream:
            if stream.status != 200:
                raise RuntimeError(f"GET /v1/conversations/stream: {stream.status}")
            self.opened.set()
            async for line in stream.content:
                if not line.startswith(b"data:"):
                    continue
                at = time.perf_counter()
                event = self._decode(line[5:])
                n = self.awaited.get(event.customer_id)
                if n is not None and event.team is not None and n not in self.arrived:
                    self.arrived[n] = at
                    if len(self.arrived) == len(self.awaited):
                        self.done.set()
                        return


async def _latency(
    service: ChorusService, key: str, dsn: str, config: ConversationsConfig
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    steady = int(config.rate * config.seconds)
    first, total = config.open_conversations, config.open_conversations + steady
    # As many connections as posts in flight: a provider's webhooks are not held to a pool.
    # Idle ones are let go before uvicorn's keep-alive timeout (5 s) could close one under a post.
    limits = httpx.Limits(
        max_connections=1_000, max_keepalive_connections=1_000, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(
        base_url=service.base_url, headers=headers, timeout=60, limits=limits
    ) as http:
        keys = await _desk(http, config, config.agent_chat_capacity)
        await _available(http, keys)
        at = datetime.now().astimezone().isoformat()
        # Every customer known first; the first `open_conversations` of them write in.
        await _post_all(http, [_known(n, at) for n in range(total)])
        await _post_all(http, [_message(n, at) for n in range(first)])
        await _caught_up(dsn, 300)
        conn = await asyncpg.connect(dsn)
        try:
            open_before = await conn.fetchval("SELECT count(*) FROM conversation_holds WHERE open")
            assigned_before = await conn.fetchval(
                "SELECT count(*) FROM conversation_holds WHERE open AND agent IS NOT NULL"
            )
        finally:
            await conn.close()
        if open_before != first:
            raise RuntimeError(f"{open_before} open conversations, not {first}")
        watcher = _Watcher(await _customer_ids(dsn, range(first, total)))
        # The timed posts and the stream go through aiohttp, whose parsing is compiled: the
        # client shares the service's two cores, and httpx spent over a millisecond of them a
        # message (client_cpu_ms_per_message says what this one spends).
        timed = aiohttp.ClientSession(
            base_url=service.base_url,
            headers={**headers, "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=None),
            connector=aiohttp.TCPConnector(limit=1_000, keepalive_timeout=2.0),
        )
        following = asyncio.create_task(watcher.follow(timed))
        await asyncio.wait_for(watcher.opened.wait(), 10)
        await asyncio.sleep(0.5)  # the stream's listener is in place
        sent: dict[int, float] = {}
        committed: dict[int, float] = {}

        async def post(n: int) -> None:
            body = msgspec.json.encode({"signals": [_message(n, at)]})
            sent[n] = time.perf_counter()
            try:
                response = await timed.post("/v1/events", data=body)
            except aiohttp.ClientConnectionError:
                # A connection closed under the post: sent again, as a webhook is (the signal's
                # id makes a second delivery a duplicate); the time counts from the first try.
                response = await timed.post("/v1/events", data=body)
            async with response:
                committed[n] = time.perf_counter()
                if response.status != 202:
                    raise RuntimeError(
                        f"POST /v1/events: {response.status} {await response.text()}"
                    )

        interval = 1 / config.rate
        work_before = await _database_work(dsn)
        cpu_before, client_before = await _cpu_by_pid(service, dsn), time.process_time()
        started = time.perf_counter()
        posts = []
        for i, n in enumerate(range(first, total)):
            await asyncio.sleep(max(0.0, started + i * interval - time.perf_counter()))
            posts.append(asyncio.create_task(post(n)))
        offered = steady / (time.perf_counter() - started)
        await asyncio.gather(*posts)
        answered = steady / (time.perf_counter() - started)
        try:
            await asyncio.wait_for(watcher.done.wait(), 300)
            cpu = _cpu_spent(cpu_before, await _cpu_by_pid(service, dsn))
            client_cpu = time.process_time() - client_before
            work_after = await _database_work(dsn)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            await timed.close()
    conn = await asyncpg.connect(dsn)
    try:
        assigned = await conn.fetchval(
            "SELECT count(*) FROM conversation_holds WHERE open AND agent IS NOT NULL"
        )
        queued = await conn.fetchval(
            "SELECT count(*) FROM conversation_holds WHERE open AND agent IS NULL AND team IS NOT NULL"
        )
    finally:
        await conn.close()
    routed = [(watcher.arrived[n] - sent[n]) * 1000 for n in sent]
    raw = [(committed[n] - sent[n]) * 1000 for n in sent]
    p99, raw_p99 = _quantile(routed, 0.99), _quantile(raw, 0.99)
    return {
        "agents": config.agents,
        "open_conversations_before": open_before,
        "assigned_before": assigned_before,
        "messages": steady,
        "offered_messages_per_s": round(offered, 1),
        "answered_messages_per_s": round(answered, 1),
        "assigned_during": assigned - assigned_before,
        "queued_after": queued,
        "routed_ms_p50": round(statistics.median(routed), 1),
        "routed_ms_p99": round(p99, 1),
        "routed_ms_max": round(max(routed), 1),
        "raw_committed_ms_p50": round(statistics.median(raw), 1),
        "raw_committed_ms_p99": round(raw_p99, 1),
        "p50_ratio": round(statistics.median(routed) / statistics.median(raw), 2),
        "p99_ratio": round(p99 / raw_p99, 2),
        "cpu_ms_per_message": round(sum(cpu.values()) * 1000 / steady, 2),
        "cpu_ms_per_message_by_part": {
            part: round(seconds * 1000 / steady, 2) for part, seconds in cpu.items()
        },
        "cores_needed_at_rate": round(sum(cpu.values()) / steady * config.rate, 2),
        "client_cpu_ms_per_message": round(client_cpu * 1000 / steady, 2),
        "transactions_per_message": round((work_after[0] - work_before[0]) / steady, 1),
        "rows_written_per_message": round((work_after[1] - work_before[1]) / steady, 1),
        "rows_written_per_message_by_table": _written_by_table(
            work_before[2], work_after[2], steady
        ),
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": p99 <= TARGET_P99_MS,
        "measured": "from the client's clock just before each POST /v1/events (one message.received "
        f"signal a request, {config.rate}/s) to the conversation's first event on "
        "GET /v1/conversations/stream with a team on it (assigned or queued); raw baseline: the "
        "same POST's answer, the signal committed; cpu_ms_per_message: user+system CPU of the "
        "service, its projection worker and its database's PostgreSQL backends from the first "
        "POST until the last conversation came routed, per message; transactions_per_message and "
        "rows_written_per_message: PostgreSQL's counters of the database over the same time "
        "(and the second after it)",
    }


async def _sampled(dsn: str, interval: float, stop: asyncio.Event) -> tuple[int, int]:
    """(samples, the most any agent held over their capacity in any sample; <= 0 is none)."""
    conn = await asyncpg.connect(dsn)
    worst, samples = -(10**6), 0
    try:
        while not stop.is_set():
            worst = max(worst, await conn.fetchval(_OVER_CAPACITY))
            samples += 1
            await asyncio.sleep(interval)
    finally:
        await conn.close()
    return samples, worst


async def _raw_commits(dsn: str, commits: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_raw_offers (id uuid PRIMARY KEY, n integer)")
        started = time.perf_counter()
        for n in range(commits):
            await conn.execute("INSERT INTO bench_raw_offers VALUES ($1, $2)", uuid.uuid4(), n)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _drain(
    service: ChorusService, key: str, dsn: str, config: ConversationsConfig
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=service.base_url, headers=headers, timeout=60) as http:
        keys = await _desk(http, config, config.drain_capacity)  # everyone offline: all queue
        at = datetime.now().astimezone().isoformat()
        await _post_all(http, [_message(n, at) for n in range(config.queued)])
        await _caught_up(dsn, 300)
        conn = await asyncpg.connect(dsn)
        try:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM conversation_holds WHERE open AND agent IS NULL"
            )
            if waiting != config.queued:
                raise RuntimeError(f"{waiting} conversations queued, not {config.queued}")
            stop = asyncio.Event()
            watching = asyncio.create_task(_sampled(dsn, config.watch_interval, stop))
            started = time.perf_counter()
            await _available(http, keys)
            while await conn.fetchval(
                "SELECT count(*) FROM conversation_holds WHERE open AND agent IS NULL"
            ):
                if time.perf_counter() - started > 300:
                    raise RuntimeError("the queues did not drain in 300 s")
                await asyncio.sleep(0.005)
            seconds = time.perf_counter() - started
            stop.set()
            samples, worst = await watching
            await _caught_up(dsn, 60)
            each = [row["n"] for row in await conn.fetch(_ASSIGNED_EACH)]
            loads = [row["held"] for row in await conn.fetch("SELECT held FROM agent_loads")]
        finally:
            await conn.close()
    raw = await _raw_commits(dsn, config.queued)
    once = len(each) == config.queued and all(n == 1 for n in each)
    within = worst <= 0 and max(loads, default=0) <= config.drain_capacity
    return {
        "agents": config.agents,
        "capacity_each": config.drain_capacity,
        "queued": config.queued,
        "drain_s": round(seconds, 3),
        "assignments_per_s": round(config.queued / seconds, 1),
        "raw_one_row_commits_s": round(raw, 3),
        "ratio": round(seconds / raw, 2),
        "conversations_assigned": len(each),
        "assigned_exactly_once": once,
        "watcher_samples": samples,
        "most_over_capacity_seen": worst,
        "final_loads_min_max": [min(loads, default=0), max(loads, default=0)],
        "no_agent_over_capacity": within,
        "meets_target": once and within,
        "measured": "from the first of 50 concurrent PUT /v1/agents/{key}/presence (available) "
        "to no open conversation unassigned; the watcher samples agent_loads against "
        f"conversation_agents' capacities every {config.watch_interval * 1000:.0f} ms meanwhile; "
        f"raw baseline: {config.queued} one-row INSERT commits in a row",
    }


def _service(servers: Servers, dsn: str, folder: Path, run: str) -> ChorusService:
    return ChorusService(
        dsn,
        servers.nats_url,
        folder / f"chorus-{run}.log",
        {
            "CHORUS_SIGNAL_STREAM": f"BENCH_{run.upper()}_SIGNALS",
            "CHORUS_OUTBOUND_STREAM": f"BENCH_{run.upper()}_OUT",
            "CHORUS_NATS_PREFIX": f"bench_{run}",
            "CHORUS_DISPATCH": "false",
            # Routing's cost, as recorded since the first run: the model's is the assistant
            # bench's (bench/results/assistant.json), and it would train here on every run.
            "CHORUS_CLASSIFIER": "keywords",
        },
    )


async def _on_service(
    servers: Servers, dsn: str, folder: Path, part: Any, config: ConversationsConfig
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    service = _service(servers, dsn, folder, run)
    key = service.create_admin_key()
    try:
        async with service:
            result: dict[str, Any] = await part(service, key, dsn, config)
            return result
    except Exception as error:
        raise RuntimeError(f"{error}\nservice log:\n{service.log_tail()}") from error
    finally:
        streams = (f"BENCH_{run.upper()}_{suffix}" for suffix in ("SIGNALS", "OUT", "DEAD_LETTERS"))
        await delete_streams(servers.nats_url, *streams)


async def latency_on_service(
    servers: Servers, dsn: str, folder: Path, config: ConversationsConfig
) -> dict[str, Any]:
    """The latency part alone, on a service of its own over `dsn`."""
    return await _on_service(servers, dsn, folder, _latency, config)


async def run_conversations(
    servers: Servers, dsn: str, config: ConversationsConfig, *, quick: bool = False
) -> dict[str, Any]:
    """The latency part on `dsn`, the drain on a fresh database of its own, each with its own
    service; a quick run is held against no target."""
    with tempfile.TemporaryDirectory(prefix="chorus-bench-conv-") as tmp:
        latency = await _on_service(servers, dsn, Path(tmp), _latency, config)
        async with fresh_database(servers.database_url) as drain_dsn:
            drain = await _on_service(servers, drain_dsn, Path(tmp), _drain, config)
    if quick:
        latency["meets_target"] = drain["meets_target"] = None
    return {"config": asdict(config), "latency": latency, "drain": drain}
