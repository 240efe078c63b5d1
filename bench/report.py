"""Results as JSON files and a short table on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["QUICK_DIR", "RESULTS_DIR", "read", "summary", "write"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_DIR = RESULTS_DIR / "quick"  # ignored by git: a smoke run never replaces a measured result
Row = tuple[str, ...]


def write(name: str, result: dict[str, Any], quick: bool | None = None) -> Path:
    """`bench/results/<name>.json`; a `--quick` run's goes to `bench/results/quick/` (`quick`:
    whether the run that wrote it was, when `result` holds another run's flag)."""
    if quick is None:
        quick = bool(result.get("quick"))
    folder = QUICK_DIR if quick else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def read(name: str, quick: bool) -> dict[str, Any]:
    """What `write` last wrote for `name` (empty if nothing), to add figures to it."""
    path = (QUICK_DIR if quick else RESULTS_DIR) / f"{name}.json"
    if not path.exists():
        return {}
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def _table(header: Row, rows: Sequence[Row]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, tuple("-" * w for w in widths), *rows]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _append(result: dict[str, Any]) -> str:
    rows: list[Row] = [
        (
            str(r["concurrency"]),
            f"{r['commands_per_s']:,.0f}",
            f"{r['raw_commits_per_s']:,.0f}",
            f"{r['ratio']:.2f}",
            _yes(r["meets_target"]),
        )
        for r in result["results"]
    ]
    header = ("concurrency", "commands/s", "raw commits/s", "ratio", "meets")
    return f"append (target ratio >= {result['target_ratio']})\n{_table(header, rows)}"


def _ingest(result: dict[str, Any]) -> str:
    raw = f"{result['raw_executemany_rows_per_s']:,.0f}"
    rows: list[Row] = [
        (
            path,
            f"{result[rate]:,.0f}",
            f"{result[attributed]:,.0f}",
            raw,
            f"{result[ratio]:.2f}",
            meets,
        )
        for path, rate, attributed, ratio, meets in (
            (
                "HTTP, known customers",
                "http_known_signals_per_s",
                "http_known_attributed_signals_per_s",
                "http_ratio",
                _yes(result["http_meets_target"]),
            ),
            (
                "HTTP, new customers",
                "http_new_customers_signals_per_s",
                "http_new_customers_attributed_signals_per_s",
                "http_new_customers_ratio",
                "-",
            ),
            (
                "NATS, batch messages",
                "nats_signals_per_s",
                "nats_attributed_signals_per_s",
                "nats_ratio",
                _yes(result["nats_meets_target"]),
            ),
            (
                "NATS, one per message",
                "nats_single_message_signals_per_s",
                "nats_single_message_attributed_signals_per_s",
                "nats_single_message_ratio",
                "-",
            ),
            (
                "HTTP, one box (demo)",
                "same_box_http_signals_per_s",
                "same_box_http_attributed_signals_per_s",
                "same_box_http_ratio",
                "-",
            ),
        )
    ]
    title = (
        f"ingest (target >= {result['target_signals_per_s']:,} committed signals/s and ratio >= "
        f"{result['target_ratio']}; NATS one-per-message publish "
        f"{result['nats_single_message_publish_per_s']:,.0f}/s)"
    )
    header = ("path", "committed/s", "attributed/s", "raw rows/s", "ratio", "meets")
    title += (
        "\ningest tier alone, its worker paused while signals go in; attributed/s: that worker "
        "alone, resumed after the last commit (one box: worker running, from the first request)"
    )
    attributed = (
        f"attributed_ratio (the worker alone, known customers, by raw rows/s): "
        f"{result['attributed_ratio']:.3f} (target >= {result['target_attributed_ratio']}) "
        f"{_yes(result['attributed_meets_target'])}"
    )
    return f"{title}\n{_table(header, rows)}\n{attributed}"


def _rules(result: dict[str, Any]) -> str:
    pure, audited = result["pure"], result["audited"]
    rows: list[Row] = [
        (
            "pure decide(), one core",
            f"{pure['decisions_per_s']:,.0f}",
            "-",
            "-",
            _yes(pure["meets_target"]),
        ),
        (
            f"audited RequestMessage, concurrency {audited['concurrency']}",
            f"{audited['audited_decisions_per_s']:,.0f}",
            f"{audited['raw_commits_per_s']:,.0f}",
            f"{audited['ratio']:.2f}",
            _yes(audited["meets_target"]),
        ),
    ]
    title = (
        f"rules (target >= {pure['target_decisions_per_s']:,} pure decisions/s and audited "
        f"ratio >= {audited['target_ratio']})"
    )
    header = ("figure", "decisions/s", "raw commits/s", "ratio", "meets")
    return f"{title}\n{_table(header, rows)}"


def _dispatch(result: dict[str, Any]) -> str:
    throughput, isolation = result["throughput"], result["isolation"]
    rows: list[Row] = [
        (
            f"SMS dispatched, {throughput['messages']:,} messages",
            f"{throughput['dispatched_messages_per_s']:,.0f}",
            f"raw posts {throughput['raw_posts_per_s']:,.0f}",
            f"{throughput['raw_ratio']:.2f}",
            _yes(throughput["meets_target"]),
        ),
        (
            f"SMS while WhatsApp hangs, {isolation['sms_messages']:,} messages",
            f"{isolation['sms_while_whatsapp_hangs_messages_per_s']:,.0f}",
            f"alone {isolation['sms_alone_messages_per_s']:,.0f}",
            f"{isolation['isolation_ratio']:.2f}",
            _yes(isolation["meets_target"]),
        ),
    ]
    title = (
        f"dispatch (target >= {throughput['target_messages_per_s']:,} messages/s; "
        f"isolation ratio >= {isolation['target_ratio']})"
    )
    header = ("figure", "messages/s", "baseline/s", "ratio", "meets")
    return f"{title}\n{_table(header, rows)}"


def _projections(result: dict[str, Any]) -> str:
    rebuild, trigger, lag = result["rebuild"], result["trigger_latency"], result["segment_lag"]
    rows: list[Row] = [
        (
            f"rebuild every read model, {result['store']['events']:,} events",
            f"{rebuild['rebuild_events_per_s']:,.0f} events/s",
            f"raw log read {rebuild['raw_log_read_events_per_s']:,.0f}/s",
            f"{rebuild['rebuild_raw_ratio']:.2f}",
            _yes(rebuild["meets_target"]),
        ),
        (
            f"signal to trigger fired at {trigger['trigger_offered_signals_per_s']:,.0f}/s",
            f"p50 {trigger['trigger_latency_ms_p50']} / p99 {trigger['trigger_latency_ms_p99']} ms",
            f"target p99 {trigger['trigger_target_p99_ms']:.0f} ms",
            f"{trigger['trigger_p99_to_target_ratio']:.2f}",
            _yes(trigger["meets_target"]),
        ),
        (
            f"segment lag after a burst of {lag['burst_signals']:,} signals",
            f"{lag['segment_lag_seconds']} s",
            f"burst ingested in {lag['burst_ingest_seconds']} s",
            f"{lag['segment_lag_to_ingest_ratio']:.2f}",
            "-",
        ),
    ]
    title = f"projections (target rebuild >= {rebuild['target_events_per_s']:,} events/s)"
    header = ("figure", "result", "baseline", "ratio", "meets")
    return f"{title}\n{_table(header, rows)}"


def _assistant(result: dict[str, Any]) -> str:
    rows: list[Row] = [
        (
            m["model"][:40],
            f"{m['accuracy']:.4f}",
            f"{m['macro_f1']:.4f}",
            f"{m['messages_per_s']:,.0f}",
            f"{m['p99_ms']:.1f}",
            f"{m['rss_mb']:,.0f}",
            _yes(m["meets_accuracy"] and m["meets_p99"]),
        )
        for m in result["models"]
    ]
    header = ("model", "accuracy", "macro-F1", "msgs/s", "p99 ms", "RSS MB", "meets")
    return f"assistant (targets: accuracy >= 0.92, p99 <= 20 ms)\n{_table(header, rows)}"


def _conversations(result: dict[str, Any]) -> str:
    latency, drain = result["latency"], result["drain"]
    rows: list[Row] = [
        (
            f"inbound to routed on the stream, p50 ({latency['offered_messages_per_s']:,.0f}/s)",
            f"{latency['routed_ms_p50']:,.1f} ms",
            f"{latency['raw_committed_ms_p50']:,.1f} ms",
            f"{latency['p50_ratio']:,.1f}",
            "-",
        ),
        (
            f"inbound to routed on the stream, p99 (target {latency['target_p99_ms']:.0f} ms)",
            f"{latency['routed_ms_p99']:,.1f} ms",
            f"{latency['raw_committed_ms_p99']:,.1f} ms",
            f"{latency['p99_ratio']:,.1f}",
            _yes(latency["meets_target"]) if latency["meets_target"] is not None else "-",
        ),
        (
            "CPU a message: service, worker, PostgreSQL (cores at the rate)",
            f"{latency['cpu_ms_per_message']:,.1f} ms ({latency['cores_needed_at_rate']:,.2f})",
            "-",
            "-",
            "-",
        ),
        (
            f"{drain['queued']:,} queued meet capacity: all assigned once, none over",
            f"{drain['drain_s']:,.2f} s ({drain['assignments_per_s']:,.0f}/s)",
            f"{drain['raw_one_row_commits_s']:,.2f} s",
            f"{drain['ratio']:,.1f}",
            _yes(drain["assigned_exactly_once"] and drain["no_agent_over_capacity"]),
        ),
    ]
    header: Row = ("figure", "measured", "raw baseline", "ratio", "meets")
    quick = result.get("quick")
    title = "conversations (quick run: not held against the target)" if quick else "conversations"
    return f"{title}\n{_table(header, rows)}"


def _campaigns(result: dict[str, Any]) -> str:
    broadcast, single = result["broadcast"], result["single_path"]
    timers, signals = result["timers"], result["signals"]
    rows: list[Row] = [
        (
            f"broadcast to {broadcast['customers']:,}, decided and queued",
            f"{broadcast['broadcast_s']:,.1f} s",
            f"{broadcast['raw_executemany_s']:,.2f} s",
            f"{broadcast['broadcast_ratio']:,.1f}",
            _yes(broadcast["meets_target"]),
        ),
        (
            f"single path, {single['sends']:,} sends (projected 100k)",
            f"{single['seconds']:,.1f} s ({single['projected_100k_s']:,.0f} s)",
            "-",
            "-",
            "-",
        ),
        (
            f"timers fired, {timers['due_at_once']:,} due at once",
            f"{timers['timers_per_s']:,.0f}/s",
            "-",
            "-",
            "-",
        ),
        (
            f"waits: {signals['resolved_by_signal']:,} by signal, "
            f"{signals['resolved_by_timeout']:,} by timeout",
            f"{signals['signal_s']:,.1f} s + {signals['timeout_s']:,.1f} s",
            "-",
            "-",
            "-",
        ),
    ]
    header: Row = ("figure", "measured", "raw baseline", "ratio", "meets")
    if result.get("quick"):
        # A smoke run's figures are of 2,000 customers: nothing to hold against the target.
        title = "campaigns (quick run: not held against the target)"
        header, rows = header[:-1], [row[:-1] for row in rows]
    else:
        title = f"campaigns (target: broadcast <= {broadcast['target_s']:.0f} s)"
    return f"{title}\n{_table(header, rows)}"


def _audit(result: dict[str, Any]) -> str:
    rows: list[Row] = []
    for name, r in (
        ("with decisions", result["as_of"]),
        ("no decisions", result["as_of_without_decisions"]),
    ):
        for kind in ("cold", "cold_whole_history", "warm"):
            rows.append(
                (
                    name,
                    kind.replace("_", " "),
                    f"{r['decision_events']:,}",
                    f"{r[kind]['p50_ms']:.1f}",
                    f"{r[kind]['p99_ms']:.1f}",
                )
            )
    header = ("history", "asked", "decisions", "p50 ms", "p99 ms")
    target = f"target p99 <= {result['target_p99_ms']:.0f} ms, 10,000 events on the streams"
    return f"audit: a customer as of an instant ({target})\n{_table(header, rows)}"


def _audit_verify(result: dict[str, Any]) -> str:
    return (
        f"audit verify: {result['events_read']:,} events, "
        f"{result['verify_events_per_s']:,} events/s against a raw read's "
        f"{result['raw_read_events_per_s']:,} (ratio {result['ratio']:.3f})"
    )


def summary(results: dict[str, dict[str, Any]]) -> str:
    m = next(iter(results.values()))["machine"]
    parts = [
        f"{m['cpu_count']} x {m['cpu_model']}, Python {m['python']}, "
        f"PostgreSQL {m['postgres_version']} ({m['postgres']}), NATS ({m['nats']})"
    ]
    if "append" in results:
        parts.append(_append(results["append"]))
    if "ingest" in results:
        parts.append(_ingest(results["ingest"]))
    if "rules" in results:
        parts.append(_rules(results["rules"]))
    if "dispatch" in results:
        parts.append(_dispatch(results["dispatch"]))
    if "projections" in results:
        parts.append(_projections(results["projections"]))
    if "assistant" in results:
        parts.append(_assistant(results["assistant"]))
    if "campaigns" in results:
        parts.append(_campaigns(results["campaigns"]))
    if "audit" in results:
        parts.append(_audit(results["audit"]))
    if "audit-verify" in results:
        parts.append(_audit_verify(results["audit-verify"]))
    if "conversations" in results:
        parts.append(_conversations(results["conversations"]))
    return "\n\n".join(parts)
