"""Abusive templates: how fast each is refused and how much memory the process reaches.

Each case runs in a fresh interpreter (so peak memory is its own). Also the cost of the meter
on an ordinary template: 10,000 renders, as a bulk request renders them.

    .venv/bin/python -m bench.bench_render_budget
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

CASES = {
    "'a' * 10**9": "{{ 'a' * 1000000000 }}",
    "lipsum(10**6)": "{{ lipsum(1000000) }}",
    "range(10**8) loop": "{% for i in range(100000000) %}x{% endfor %}",
    "3 nested loops of 1000": "{% for i in range(1000) %}{% for j in range(1000) %}"
    "{% for k in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}",
    "doubling {% set %}": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "infinite macro recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "2**40 macro calls": "{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}"
    "{% endmacro %}{{ m(40) }}",
    "3 filters x 499,999": "{% for i in range(499999) %}{{ name|upper|lower|trim }}{% endfor %}",
    "1 GB of output": "{% for i in range(99999) %}{{ 'x' * 9999 }}{% endfor %}",
}

_CHILD = """
import json, resource, sys, time
from chalicelib.services.templates import CompiledTemplates, TemplateRenderError
start = time.perf_counter()
try:
    CompiledTemplates("s", sys.argv[1], None).render({"name": "Ann"})
    outcome = "rendered"
except TemplateRenderError as err:
    outcome = getattr(err, "setting", "template error")
took = time.perf_counter() - start
print(json.dumps({"seconds": took, "outcome": outcome,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    print(f"{'case':28} {'refused as':24} {'time':>8} {'peak RSS':>9}")
    for name, template in CASES.items():
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, template],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:28} {result['outcome']:24} {result['seconds']:7.3f}s"
            f" {result['max_rss_mb']:7.1f}MB"
        )
    from chalicelib.services.render_budget import RenderMeter
    from chalicelib.services.templates import CompiledTemplates

    html = (
        "<html><body><h1>Hello {{name}}</h1><p>"
        + "Lorem ipsum dolor sit amet, {{company}}. " * 50
        + "</p><a href='https://x.example/{{emailRecipientId}}'>link</a></body></html>"
    )
    templates = CompiledTemplates("Hi {{name}}", html, None)
    meter = RenderMeter()
    start = time.perf_counter()
    for i in range(10_000):
        templates.render(
            {"name": f"User {i}", "company": "ACME", "emailRecipientId": str(i)}, meter
        )
    print(
        f"ordinary 2.5 KB template, 10,000 recipients on one meter:"
        f" {time.perf_counter() - start:.3f}s, {meter.operations} operations,"
        f" {meter.work_bytes / 1e6:.1f} MB work"
    )


if __name__ == "__main__":
    main()
