"""A soak's verdict: criteria (printed as a table) and the figures behind them (written as JSON)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Criterion:
    name: str
    ok: bool
    detail: str
    informative: bool = False     # shown, but not part of pass/fail


@dataclass
class Report:
    mode: str
    params: dict
    criteria: list[Criterion] = field(default_factory=list)
    readers: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    interrupted: bool = False

    def add(self, c: Criterion) -> None:
        self.criteria.append(c)

    @property
    def passed(self) -> bool:
        judged = [c for c in self.criteria if not c.informative]
        return bool(judged) and not self.interrupted and all(c.ok for c in judged)

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.criteria if not c.ok and not c.informative]

    def table(self) -> str:
        width = max([len(c.name) for c in self.criteria] + [9])
        lines = [f"{'criterion':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
        for c in self.criteria:
            mark = "info" if c.informative else ("PASS" if c.ok else "FAIL")
            lines.append(f"{c.name:<{width}}  {mark:<6}  {c.detail}")
        verdict = "INTERRUPTED" if self.interrupted else ("PASS" if self.passed else "FAIL")
        lines.append(f"soak {self.mode}: {verdict}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"mode": self.mode, "passed": self.passed, "interrupted": self.interrupted,
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "params": self.params,
                "criteria": [{"name": c.name, "ok": c.ok, "detail": c.detail, "informative": c.informative}
                             for c in self.criteria],
                "readers": self.readers, **self.extra}

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")


def fmt_ms(v: float | None) -> str:
    return "none seen" if v is None else f"{v:.0f} ms"


def fmt_summary(s: dict) -> str:
    if not s.get("n"):
        return "no samples"
    return f"p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, max {s['max_ms']:.0f} ms (n={s['n']})"
