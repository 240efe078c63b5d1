"""`chorus audit verify`'s options and what it prints: the first differences of each check,
then one summary line per check."""

from __future__ import annotations

import argparse

from rich.console import Console

from application.audit.verify import CHECK_DECISIONS, CHECK_SENT, CheckReport, Difference
from entrypoints.audit_cli import add_audit_parser, print_reports


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_audit_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["audit", "verify", *argv])


class TestVerifyOptions:
    def test_by_default_every_check_runs_and_twenty_differences_are_shown(self) -> None:
        args = options()
        assert (args.audit_command, args.show, args.skip_read_models) == ("verify", 20, False)

    def test_the_read_models_can_be_left_out_and_more_differences_shown(self) -> None:
        args = options("--skip-read-models", "--show", "50")
        assert (args.show, args.skip_read_models) == (50, True)


class TestPrintedReports:
    def test_differences_come_first_then_a_summary_line_per_check(self) -> None:
        sent = CheckReport(CHECK_SENT, checked=3)
        sent.found(Difference("message m-1", "names decision d-1, which is not on record [x]"))
        decisions = CheckReport(CHECK_DECISIONS, checked=5)
        console = Console(record=True, width=200)
        print_reports(console, [sent, decisions])
        assert console.export_text().splitlines() == [
            f"{CHECK_SENT}: the first differences",
            "  message m-1: names decision d-1, which is not on record [x]",
            f"FAILED {CHECK_SENT}: 3 checked, 1 difference(s)",
            f"ok     {CHECK_DECISIONS}: 5 checked, 0 difference(s)",
        ]
