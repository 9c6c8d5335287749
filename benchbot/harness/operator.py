"""The person at the bench, or a script standing in for one (CI has no stdin)."""
from __future__ import annotations

import csv
import os
import threading
from pathlib import Path
from typing import IO, Any, overload

from rich.console import Console
from rich.markup import escape

from benchbot.core.errors import BenchbotError
from benchbot.core.interfaces import GraspPlan, Judgement, Operator
from benchbot.harness.terminal import LineReader, detect_preview, inline_image

FAILURE_CAUSES = ("slipped", "missed", "collision", "dropped", "other")
KINDS = ("success", "failure", "redo", "abort")


NOTE_MAX_CHARS = 500
CAUSE_KEYS = {c[0]: c for c in FAILURE_CAUSES} | {c: c for c in FAILURE_CAUSES}
VERDICT_KEYS = {k[0]: k for k in KINDS} | {k: k for k in KINDS}
REVIEW_KEYS = {"g": "go", "go": "go", "s": "skip", "skip": "skip", "a": "abort", "abort": "abort"}
CONFIRM_KEYS = {"g": True, "go": True, "y": True, "yes": True, "a": False, "abort": False, "n": False, "no": False}


def clean_note(text: str | None) -> str | None:
    """An operator's note as stored: printable, one line, at most NOTE_MAX_CHARS; None when empty."""
    if text is None:
        return None
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return flat[:NOTE_MAX_CHARS] or None


class ConsoleOperator(Operator):
    """Asks the operator in the terminal. Every question prints its text and its keys (again after
    an unknown answer). `cancel` (a threading.Event) lets another answer source, the console page,
    answer first: the question then returns None. On a terminal, keys typed before a question was
    shown are dropped, so a stray Enter never answers a question nobody has read."""

    def __init__(self, console: Console | None = None, assume_yes: bool = False, stdin: IO | int | None = None,
                 preview: str | None = "auto") -> None:
        self.console = console or Console()
        self.assume_yes = assume_yes
        self._stdin = stdin
        self._reader: LineReader | None = None
        self.preview = detect_preview(is_terminal=self.console.is_terminal) if preview == "auto" else preview

    @property
    def reader(self) -> LineReader:
        if self._reader is None:
            self._reader = LineReader(self._stdin)
        return self._reader

    def instruct(self, message: str) -> None:
        self.console.print(f"[bold cyan]operator:[/] {escape(message)}")

    def announce(self, message: str) -> None:
        """Say that a question was settled elsewhere (e.g. answered on the console page)."""
        self.console.print(f"\n[dim]{escape(message)}[/]")

    def _ask(self, question: str, keys: dict[str, Any], default: Any, cancel: threading.Event | None) -> Any:
        if os.isatty(self.reader.fd):
            self.reader.discard_typed()
        shown = ", ".join(k for k in keys if len(k) == 1)
        while True:
            self.console.print(question, end=" ", highlight=False)
            try:
                line = self.reader.readline(cancel)
            except EOFError:
                raise BenchbotError("the operator's terminal input ended while a question was open",
                                    "run in a terminal, or pass --outcomes FILE, or use --console") from None
            if line is None:
                return None
            key = line.strip().lower()
            if not key and default is not None:
                return default
            if key in keys:
                return keys[key]
            self.console.print(f"[yellow]'{escape(line.strip())}' is not an answer here: type one of {shown}"
                               + (" (or Enter)" if default is not None else "") + "[/]")

    # with a `cancel` event an answer may be None (cancelled: answered elsewhere); without one it never is
    @overload
    def confirm(self, message: str, cancel: None = None) -> bool: ...
    @overload
    def confirm(self, message: str, cancel: threading.Event | None) -> bool | None: ...

    def confirm(self, message: str, cancel: threading.Event | None = None) -> bool | None:
        if self.assume_yes:
            self.console.print(f"[bold cyan]operator:[/] {escape(message)} [dim](--yes)[/]")
            return True
        return self._ask(f"[bold cyan]{escape(message)}[/] [[bold]Enter[/]] go · [[bold]a[/]] abort the run",
                         CONFIRM_KEYS, True, cancel)

    def show_plan(self, plan: GraspPlan) -> None:
        t = plan.timings_s
        times = " ".join(f"{k} {1000 * v:.0f} ms" for k, v in t.items() if k in ("capture", "detect", "robust"))
        self.console.print(f"[bold]planned grasp[/] {escape(plan.summary())}  [dim]{times}[/]")
        if plan.overlay:
            self.console.print(f"overlay: {escape(plan.overlay)}", highlight=False)
            if self.preview and os.path.isfile(plan.overlay):
                self.console.file.write(inline_image(plan.overlay, self.preview))
                self.console.file.flush()

    @overload
    def review(self, plan: GraspPlan, cancel: None = None) -> str: ...
    @overload
    def review(self, plan: GraspPlan, cancel: threading.Event | None) -> str | None: ...

    def review(self, plan: GraspPlan, cancel: threading.Event | None = None) -> str | None:
        self.show_plan(plan)
        if self.assume_yes:
            self.console.print("[bold cyan]operator:[/] execute this grasp [dim](--yes)[/]")
            return "go"
        return self._ask("[bold cyan]Execute this grasp?[/] [[bold]Enter[/]/[bold]g[/]] go · [[bold]s[/]] skip "
                         "(void it, nothing moves) · [[bold]a[/]] abort the run", REVIEW_KEYS, "go", cancel)

    @overload
    def judge(self, summary: str, cancel: None = None) -> Judgement: ...
    @overload
    def judge(self, summary: str, cancel: threading.Event | None) -> Judgement | None: ...

    def judge(self, summary: str, cancel: threading.Event | None = None) -> Judgement | None:
        self.console.print(summary, markup=False, highlight=False)
        kind = self._ask("[bold cyan]Outcome?[/] [[bold]s[/]] success · [[bold]f[/]] failure · [[bold]r[/]] redo · "
                         "[[bold]a[/]] abort the trial", VERDICT_KEYS, None, cancel)
        if kind is None:
            return None
        cause = None
        if kind == "failure":
            cause = self._ask("[bold cyan]Cause?[/] " + " · ".join(f"[[bold]{c[0]}[/]] {c}" for c in FAILURE_CAUSES)
                              + " (Enter = other)", CAUSE_KEYS, "other", cancel)
            if cause is None:
                return None
        self.console.print("[bold cyan]Note[/] (optional, Enter = none):", end=" ")
        try:
            note = self.reader.readline(cancel)
        except EOFError:
            note = ""
        if note is None:
            return None
        return Judgement(kind=kind, source="operator", cause=cause, note=clean_note(note))


class ScriptedOperator(Operator):
    """Answers from a CSV file (`trial_id,outcome[,cause][,note]`, outcome in success|failure|redo|abort)
    or with one fixed verdict, for non-interactive runs. Outcomes are stored with source `scripted`."""

    def __init__(self, answers: dict[str, list[Judgement]] | None = None, default: Judgement | None = None,
                 console: Console | None = None) -> None:
        self.answers = answers or {}
        self.default = default
        self.console = console or Console(stderr=True)
        self.current_trial: str | None = None

    @classmethod
    def from_csv(cls, path: str | Path) -> ScriptedOperator:
        path = Path(path)
        if not path.is_file():
            raise BenchbotError(f"{path}: outcomes file not found", "give a CSV with trial_id,outcome[,cause][,note]")
        try:
            with path.open(newline="", encoding="utf-8") as f:
                return cls(_read_answers(path, list(csv.reader(f))))
        except UnicodeDecodeError as e:
            raise BenchbotError(f"{path}: not UTF-8 text (byte {e.start})", "save the outcomes CSV as UTF-8") from None
        except csv.Error as e:
            raise BenchbotError(f"{path}: not a readable CSV ({e})",
                                "give a CSV with trial_id,outcome[,cause][,note]") from None
        except OSError as e:
            raise BenchbotError(f"{path}: cannot read the outcomes file ({e.strerror or e})",
                                "check the path and its permissions") from None

    def begin_trial(self, trial_id: str) -> None:
        self.current_trial = trial_id

    def uncovered(self, trial_ids: list[str]) -> list[str]:
        """Trials among these that no scripted answer would judge (a redo alone does not)."""
        if self.default is not None:
            return []
        return [t for t in trial_ids if not any(j.kind != "redo" for j in self.answers.get(t, []))]

    def instruct(self, message: str) -> None:
        self.console.print(f"[dim]operator (scripted):[/] {escape(message)}")

    def confirm(self, message: str) -> bool:
        return True

    def review(self, plan: GraspPlan) -> str:
        return "go"

    def judge(self, summary: str) -> Judgement:
        queue = self.answers.get(self.current_trial or "", [])
        if queue:
            return queue.pop(0)
        if self.default is not None:
            return self.default
        raise BenchbotError(f"no scripted outcome for trial {self.current_trial}",
                            "add it to the outcomes CSV or run interactively")


def _read_answers(path: Path, rows: list[list[str]]) -> dict[str, list[Judgement]]:
    answers: dict[str, list[Judgement]] = {}
    for n, row in enumerate(rows, start=1):
        if not row or row[0].startswith("#") or row[0] == "trial_id":
            continue
        if len(row) < 2 or row[1] not in KINDS:
            raise BenchbotError(f"{path}:{n}: expected trial_id,outcome with outcome in {'|'.join(KINDS)}",
                                "fix that line")
        cause = row[2] if len(row) > 2 and row[2] else None
        if cause and cause not in FAILURE_CAUSES:
            raise BenchbotError(f"{path}:{n}: unknown cause '{cause}'", f"use one of {', '.join(FAILURE_CAUSES)}")
        note = row[3] if len(row) > 3 and row[3] else None
        answers.setdefault(row[0], []).append(Judgement(row[1], "scripted", cause, note))
    return answers
