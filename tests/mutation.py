"""``make mutation``: mutmut over the modules whose mistakes cost mail (not part of ``make test``).

Coverage says a line ran; a mutation score says a test would notice if it were wrong. Each
module below is mutated against the tests written for it, in a copy of the project of its
own (``build/mutation/<module>/``), so one module can be run alone and its results are kept
between runs. Figures, and each surviving mutant judged equivalent: ``TESTING.md``.

::

    python -m tests.mutation                                  # every module
    python -m tests.mutation chalicelib/services/send_rate.py # some of them
    python -m tests.mutation --survivors ...                  # only what no test caught last time
    python -m tests.mutation --only '*create__mutmut_*' ...   # only the mutants named (globs)
    python -m tests.mutation --report                         # the figures, running nothing

``MUTATION_CHILDREN`` (default 1) mutants run at once; the Makefile runs it niced. The tests
that start subprocesses (e2e, deploy, contract) are left out: a subprocess would not run the
mutant under test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
MAIL = "tests/integration/mail"

# The send pipeline: what accepting, sending, the consumer and the sweep do to a recipient.
PIPELINE = (
    f"{MAIL}/test_single_send.py",
    f"{MAIL}/test_bulk_and_consumer.py",
    f"{MAIL}/test_batches.py",
    f"{MAIL}/test_exactly_once.py",
    f"{MAIL}/test_recovery.py",
    f"{MAIL}/test_full_messages.py",
    f"{MAIL}/test_failover.py",
    f"{MAIL}/test_test_keys.py",
    f"{MAIL}/test_status_and_suppressions.py",
    f"{MAIL}/test_outages.py",
    f"{MAIL}/test_lambda_handlers.py",
)
# The consumer and the recipient-row repositories: PIPELINE less the files that only pass
# through them on the way to something else (a survivor reruns every test that reaches its
# function, and every pipeline test reaches these: over an hour a module otherwise).
CONSUMER = (
    f"{MAIL}/test_consumer_records.py",
    f"{MAIL}/test_bulk_and_consumer.py",
    f"{MAIL}/test_batches.py",
    f"{MAIL}/test_exactly_once.py",
    f"{MAIL}/test_outages.py",
    f"{MAIL}/test_lambda_handlers.py",
)
RECORDS = (
    f"{MAIL}/test_consumer_records.py",
    f"{MAIL}/test_batches.py",
    f"{MAIL}/test_exactly_once.py",
    f"{MAIL}/test_recovery.py",
)
EVENTS = (
    "tests/unit/test_event_parsers.py",
    f"{MAIL}/test_ses_events.py",
    f"{MAIL}/test_webhooks.py",
    f"{MAIL}/test_test_keys.py",
    f"{MAIL}/test_status_and_suppressions.py",
)
KEY_POLICIES = (
    "tests/unit/test_key_policy.py",
    f"{MAIL}/test_key_policies.py",
    f"{MAIL}/test_server_keys_and_captcha.py",
)
CAMPAIGNS = (
    "tests/unit/test_campaign_files.py",
    "tests/unit/test_campaign_rows.py",
    "tests/unit/test_fast_addresses.py",
    f"{MAIL}/test_campaigns.py",
    f"{MAIL}/test_campaign_resume.py",
)
# The campaign repository modules: the campaign tests that reach the database (the unit tests
# above never call a repository, and test_fast_addresses.py alone takes 8 minutes a run), and
# the repository's statements one by one on the real database.
CAMPAIGN_DATABASE = (f"{MAIL}/test_campaigns.py", f"{MAIL}/test_campaign_resume.py")
CAMPAIGN_REPOSITORY = (*CAMPAIGN_DATABASE, f"{MAIL}/test_campaign_repository.py")

# Module (or glob) → the tests that pin it.
MODULES: dict[str, tuple[str, ...]] = {
    "chalicelib/providers/chain.py": (
        "tests/unit/providers/test_chain.py",
        "tests/integration/providers/test_failover.py",
        f"{MAIL}/test_failover.py",
    ),
    "chalicelib/services/send_rate.py": (f"{MAIL}/test_send_rate.py",),
    "chalicelib/services/render_budget.py": (
        "tests/unit/test_render_budget.py",
        "tests/unit/test_templates.py",
        f"{MAIL}/test_render_budget.py",
    ),
    "chalicelib/services/suppressions.py": EVENTS,
    "chalicelib/events/*.py": EVENTS,
    "chalicelib/services/delivery.py": PIPELINE,
    "chalicelib/services/sending.py": ("tests/unit/test_sending.py", *PIPELINE),
    "chalicelib/services/messages.py": ("tests/unit/test_messages.py", *PIPELINE),
    "chalicelib/services/consumer.py": CONSUMER,
    "chalicelib/repositories/deliveries.py": (
        f"{MAIL}/test_delivery_records.py",
        *RECORDS,
        f"{MAIL}/test_bulk_and_consumer.py",
    ),
    "chalicelib/repositories/delivery_rows.py": (
        f"{MAIL}/test_delivery_records.py",
        f"{MAIL}/test_send_leases.py",
        *RECORDS,
    ),
    "chalicelib/repositories/send_leases.py": (f"{MAIL}/test_send_leases.py", *RECORDS),
    "chalicelib/repositories/delivery_status.py": (
        f"{MAIL}/test_status_reads.py",
        *PIPELINE,
        *EVENTS,
    ),
    "chalicelib/repositories/delivery_events.py": (f"{MAIL}/test_event_rows.py", *EVENTS),
    # Issue 16's key policies and issue 18's campaigns, as they landed.
    "chalicelib/services/key_policy.py": KEY_POLICIES,
    "chalicelib/repositories/key_limits.py": KEY_POLICIES,
    # The services the unit tests never call (only campaign_files' reader and campaign_rows'
    # checks are unit-tested): their runs leave the unit tests out, results unchanged.
    "chalicelib/services/campaigns.py": CAMPAIGN_DATABASE,
    "chalicelib/services/campaign_files.py": (
        "tests/unit/test_campaign_files.py",
        *CAMPAIGN_DATABASE,
    ),
    "chalicelib/services/campaign_processing.py": CAMPAIGN_DATABASE,
    "chalicelib/services/campaign_rows.py": CAMPAIGNS,
    "chalicelib/repositories/campaign_table.py": CAMPAIGN_REPOSITORY,
    "chalicelib/repositories/campaign_lifecycle.py": CAMPAIGN_REPOSITORY,
    "chalicelib/repositories/campaign_staging.py": CAMPAIGN_REPOSITORY,
    "chalicelib/repositories/campaign_fan_out.py": CAMPAIGN_REPOSITORY,
}

# Under mutmut every call into the mutated module goes through its trampoline: a template
# that runs into MAX_RENDER_OPERATIONS in a second takes over 10 s there, and would be refused
# for MAX_RENDER_SECONDS instead. The time limit is raised so the operations limit is what the
# render-budget tests see (a mutant that renders forever is still stopped by mutmut's timeout).
MUTATION_ENVIRONMENT = {"MAX_RENDER_SECONDS": "300"}

COPIED = ("chalicelib", "tests", "mmms_local", "app.py", ".chalice", "docs", "pyproject.toml")
STATUS = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+)$")


def slug(module: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", module.removeprefix("chalicelib/").removesuffix(".py"))


def workdir(module: str) -> Path:
    return WORK / slug(module)


def prepare(module: str) -> Path:
    """The module's copy of the project, current, with mutmut's settings for it."""
    work = workdir(module)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.rmtree(work / name, ignore_errors=True)
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    tests = [test for test in MODULES[module] if (ROOT / test).exists()]
    settings = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["chalicelib"]',
            f"only_mutate = {_toml_list([module])}",
            f"also_copy = {_toml_list(['app.py', 'mmms_local', '.chalice', 'docs'])}",
            'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-q"]',
            f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
            "use_git_change_detection = false",
            "",
        ]
    )
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + settings, encoding="utf-8")
    return work


def run(module: str, *, survivors_only: bool, only: list[str] | None = None) -> None:
    names = survivors(module) if survivors_only else list(only or [])
    if survivors_only and not names:
        return
    if not survivors_only and not only:  # a whole run starts afresh; a part keeps the rest
        shutil.rmtree(workdir(module) / "mutants", ignore_errors=True)
    unchecked = _not_checked(module)
    work = prepare(module)
    _mutmut_run(work, names)
    if survivors_only:  # mutmut made the mutants of functions changed since: run them too
        changed = [name for name in _not_checked(module) if name not in unchecked]
        if changed:
            _mutmut_run(work, changed)


def _not_checked(module: str) -> set[str]:
    return {name for name, status in statuses(module).items() if status == "not checked"}


def _mutmut_run(work: Path, names: list[str]) -> None:
    children = os.environ.get("MUTATION_CHILDREN", "1")
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run(
        [str(mutmut), "run", "--max-children", children, *names],
        cwd=work,
        check=False,
        env={**os.environ, **MUTATION_ENVIRONMENT},
    )


def statuses(module: str) -> dict[str, str]:
    """Each mutant of ``module`` and what became of it (killed, survived, no tests, ...)."""
    work = workdir(module)
    if not (work / "mutants").exists():
        return {}
    mutmut = Path(sys.executable).with_name("mutmut")
    listed = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = (STATUS.match(line) for line in listed.splitlines())
    return {m["name"]: m["status"] for m in found if m is not None}


def survivors(module: str) -> list[str]:
    """The mutants no test caught last time: survived, or reached by no test then (new tests
    are associated with the code they run when the run starts)."""
    return [name for name, status in statuses(module).items() if status in ("survived", "no tests")]


def report(modules: list[str]) -> str:
    """A Markdown table of each module's figures.

    The score is mutmut's own: killed and timed out over all mutants. A timeout is a mutant
    that made its tests hang (a follower never woken, a lock never let go) until mutmut's
    CPU-time limit: ``make test`` would not pass with it either.
    """
    lines = [
        "| module | mutants | killed | timeout | survived | other | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for module in modules:
        counts = Counter(statuses(module).values())
        total = sum(counts.values())
        killed, timeout, survived = counts["killed"], counts["timeout"], counts["survived"]
        other = total - killed - timeout - survived
        score = f"{100 * (killed + timeout) / total:.1f} %" if total else "-"
        lines.append(
            f"| `{module}` | {total} | {killed} | {timeout} | {survived} | {other} | {score} |"
        )
    return "\n".join(lines)


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules of MODULES (default: all)")
    parser.add_argument(
        "--survivors", action="store_true", help="rerun what no test caught last time"
    )
    parser.add_argument("--report", action="store_true", help="print the figures only")
    parser.add_argument(
        "--only",
        action="append",
        metavar="GLOB",
        help="run only the mutants whose names match (mutmut's names, e.g. '*create__mutmut_*')",
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"not in MODULES: {', '.join(unknown)}")
    modules = args.modules or list(MODULES)
    if not args.report:
        for module in modules:
            run(module, survivors_only=args.survivors, only=args.only)
    print(report(modules))  # noqa: T201 - the command's output


if __name__ == "__main__":
    main()
