"""The person at the bench, or a script standing in for one (CI has no stdin)."""
from __future__ import annotations

import csv
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt

from ..errors import BenchbotError
from ..interfaces import Judgement

FAILURE_CAUSES = ("slipped", "missed", "collision", "dropped", "other")
KINDS = ("success", "failure", "redo", "abort")


class ConsoleOperator:
    """Asks the operator through the terminal with rich prompts (messages are printed as plain text:
    object names and notes come from user files)."""

    def __init__(self, console: Console | None = None, assume_yes: bool = False) -> None:
        self.console = console or Console()
        self.assume_yes = assume_yes

    def instruct(self, message: str) -> None:
        self.console.print(f"[bold cyan]operator:[/] {escape(message)}")

    def confirm(self, message: str) -> bool:
        if self.assume_yes:
            self.console.print(f"[bold cyan]operator:[/] {escape(message)} [dim](--yes)[/]")
            return True
        answer = Prompt.ask(f"[bold cyan]{escape(message)}[/] (Enter = go, a = abort)", default="",
                            console=self.console)
        return answer.strip().lower() not in ("a", "abort", "n", "no")

    def judge(self, summary: str) -> Judgement:
        self.console.print(summary, markup=False)
        kind = Prompt.ask(r"Outcome? \[s]uccess / \[f]ailure / \[r]edo / \[a]bort", choices=["s", "f", "r", "a"],
                          console=self.console)
        kind = {"s": "success", "f": "failure", "r": "redo", "a": "abort"}[kind]
        cause = None
        if kind == "failure":
            cause = Prompt.ask("Cause", choices=list(FAILURE_CAUSES), default="other", console=self.console)
        note = Prompt.ask("Note (optional)", default="", console=self.console) or None
        return Judgement(kind=kind, source="operator", cause=cause, note=note)


class ScriptedOperator:
    """Answers from a CSV file (`trial_id,outcome[,cause][,note]`, outcome in success|failure|redo|abort)
    or with one fixed verdict, for non-interactive runs. Outcomes are stored with source `scripted`."""

    def __init__(self, answers: dict[str, list[Judgement]] | None = None, default: Judgement | None = None,
                 console: Console | None = None) -> None:
        self.answers = answers or {}
        self.default = default
        self.console = console or Console(stderr=True)
        self.current_trial: str | None = None

    @classmethod
    def from_csv(cls, path: str | Path) -> "ScriptedOperator":
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

    def uncovered(self, trial_ids: list[str]) -> list[str]:
        """Trials among these that no scripted answer would judge (a redo alone does not)."""
        if self.default is not None:
            return []
        return [t for t in trial_ids if not any(j.kind != "redo" for j in self.answers.get(t, []))]

    def instruct(self, message: str) -> None:
        self.console.print(f"[dim]operator (scripted):[/] {escape(message)}")

    def confirm(self, message: str) -> bool:
        return True

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
