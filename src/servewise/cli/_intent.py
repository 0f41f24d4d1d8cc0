"""``servewise intent "TEXT"``: show the workload a description becomes, what was assumed and what was ignored, so
a user can check the parsing from the terminal before planning (``-o workload.yaml`` then ``servewise plan -f``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from servewise.workload import IntentResult, extract_intent

from ._output import Column, OutputFormat, render, stdout_console, write_atomically

__all__ = ["intent_command"]

_COLUMNS = (Column("field", "field"), Column("value", "value"))


def _rows(result: IntentResult) -> list[dict[str, object]]:
    """One row per set field of the validated workload, dotted (``traffic.qps``); lengths show their mean."""
    rows: list[dict[str, object]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and set(value) >= {"mean", "kind"}:
                rows.append(
                    {"field": f"{prefix}{key}", "value": f"{value['mean']:g} tokens (mean, {value['kind']})"}
                )
            elif isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif value is not None and value != []:
                shown = ", ".join(map(str, value)) if isinstance(value, list) else value
                rows.append({"field": f"{prefix}{key}", "value": shown})

    walk(result.workload.model_dump(mode="json"), "")
    rows.append({"field": "traffic.avg_qps", "value": round(result.workload.traffic.avg_qps, 4)})
    rows.append({"field": "traffic.peak_qps", "value": round(result.workload.traffic.peak_qps, 4)})
    return rows


def intent_command(
    text: Annotated[
        str, typer.Argument(help='the workload in words, e.g. "a support chatbot for 5,000 employees"')
    ],
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="write the workload file (YAML) for `servewise plan -f`"),
    ] = None,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url", help="OpenAI-compatible endpoint (default: SERVEWISE_INTENT_LLM_URL; key from _KEY)"
        ),
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option("--llm-model", help="model at --llm-url (default: SERVEWISE_INTENT_LLM_MODEL)"),
    ] = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
) -> None:
    """Read a workload from a description: the parsed fields, what was assumed, and what was ignored."""
    result = extract_intent(text, base_url=llm_url, model=llm_model, db_url=db_url)
    if output is not None:
        header = f"# servewise intent ({result.method}): {' '.join(text.split())}\n"
        write_atomically(
            output, header + yaml.safe_dump(result.data, sort_keys=False), example="workload.yaml"
        )
    title = f"workload ({'LLM' if result.method == 'llm' else 'rules'}): {result.workload.use_case}"
    render(_rows(result), _COLUMNS, fmt, title=title, json_document=result.document())
    if fmt in (OutputFormat.json, OutputFormat.csv):
        return
    sections = (
        ("understood", result.matched),
        ("assumption", result.assumptions),
        ("ignored", result.ignored),
    )
    lines = [f"{name}: {line}" for name, items in sections for line in items]
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(escape(line), style="bold" if line.startswith("ignored") else "dim", highlight=False)
