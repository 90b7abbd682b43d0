"""`predict`, `merge`, `serve` and `export`: a trained model at work."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from ..errors import ReviewstarsError
from ..progress import one_line
from ..text import without_lone_surrogates
from .app import DeviceOption, app, err, out
from .options import with_settings


# --------------------------------------------------------------------------- predict


@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Reviews to rate; - (or none, with input piped in) reads them from "
                                                "standard input, one a line. A review that starts with a dash goes "
                                                "after --: predict -m M -- \"-terrible service\"."),
    model: str = typer.Option(..., "--model", "-m", help="Model folder or Hub id."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Rate every row of a .csv/.parquet/.jsonl file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="With --file: where to write the predictions."),
    column: Optional[str] = typer.Option(None, help="With --file: the column holding the reviews (default: the first of "
                                         "text, review, content, ... found)."),
    keep_columns: bool = typer.Option(False, "--keep-columns", help="With --file: keep the input's other columns (an id, "
                                      "a date) beside the predictions; one named like a prediction becomes input_<name>."),
    shard: Optional[str] = typer.Option(
        None, help="With --file: i/N reads and rates only the i-th of N runs of consecutive rows (one process of N); "
                   "join the outputs with `reviewstars merge`."
    ),
    engine: str = typer.Option("local", help="With --file: local (this process) or ray (Ray Data workers on this machine "
                               "or a cluster; --file may be a folder or a glob; --output a folder of Parquet parts, or one file). "
                               "Needs pip install 'reviewstars\[ray]'."),
    ray_address: Optional[str] = typer.Option(None, help="With --engine ray: the cluster to join (ray://host:10001 or auto; "
                                                         "default: start Ray on this machine)."),
    workers: Optional[int] = typer.Option(None, min=1, help="With --engine ray: model workers (default: one per GPU, else one "
                                                              "per CPU of the cluster)."),
    batch_size: Optional[int] = typer.Option(None, help="Texts per model call (default: the model's own, 16 for transformers on a CPU)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    device: str = DeviceOption,
) -> None:
    """Predict stars for reviews given as arguments, or for a whole file (streamed: any size)."""
    from ..jobs import predict_file, predict_texts

    _check_batch_size(batch_size)
    if file is not None:
        if texts:
            raise ReviewstarsError("give reviews as arguments or --file, not both")
        if engine not in ("local", "ray"):
            raise ReviewstarsError(f"--engine {engine!r}: expected local or ray")
        if output is None:
            raise ReviewstarsError("--file needs --output (a .csv, .parquet or .jsonl path" +
                                   (", or a folder for the parts)" if engine == "ray" else ")"))
        if engine == "local" and (file.is_dir() or (not file.exists() and any(char in str(file) for char in "*?["))):
            raise ReviewstarsError(f"--file {file}: {'a folder' if file.is_dir() else 'a glob'}; --engine local rates one "
                                   "file: give a file, or --engine ray to rate a folder or glob of files")
        if engine == "ray":
            if keep_columns:
                raise ReviewstarsError("--keep-columns goes with --engine local")
            summary = _predict_with_ray(model, file, output, column, shard, ray_address, workers, batch_size, device)
        else:
            if ray_address or workers:
                raise ReviewstarsError("--ray-address and --workers go with --engine ray")
            summary = predict_file(model, file, output, column, shard=shard, batch_size=batch_size, device=device,
                                   keep_columns=keep_columns)
        rated, before = summary["rated"], summary["rows"] - summary["rated"]
        speed = f"{summary['predictions_per_second']:,.0f}/s"
        how = (speed if not before else "every one kept from the stopped run" if not rated
               else f"{rated:,} now at {speed}, {before:,} kept from the stopped run")
        out.print(f"rated {summary['rows']:,} review{'' if summary['rows'] == 1 else 's'} ({how}) -> {escape(summary['output'])}",
                  highlight=False, soft_wrap=one_line(out))
        if summary.get("columns_not_kept"):
            err.print(f"[bold yellow]warning:[/] not kept: {escape(', '.join(summary['columns_not_kept']))}, fields some rows "
                      "have but the first one lacks (the first row names the columns)", highlight=False)
        if summary.get("empty"):
            empty = summary["empty"]
            out.print(f"{empty:,} of them {'has' if empty == 1 else 'have'} no words (flagged in the empty column): "
                      f"{'its' if empty == 1 else 'their'} stars say nothing of a review", highlight=False)
        if summary.get("texts_cut"):
            cut, most = summary["texts_cut"], summary["chars_read_at_most"]
            out.print(f"{cut:,} {'review' if cut == 1 else 'reviews'} over {most:,} characters {'was' if cut == 1 else 'were'} "
                      f"read by {'its' if cut == 1 else 'their'} first and last {most // 2:,}", highlight=False)
        return
    if output is not None:
        raise ReviewstarsError("--output needs --file: predictions of texts given as arguments are printed (--json for JSON)")
    file_only = [flag for flag, value in (("--column", column), ("--shard", shard), ("--ray-address", ray_address),
                                          ("--workers", workers)) if value is not None] + (["--engine"] if engine != "local" else []) \
        + (["--keep-columns"] if keep_columns else [])
    if file_only:
        raise ReviewstarsError(f"{', '.join(file_only)} go{'es' if len(file_only) == 1 else ''} with --file")
    texts = _texts_given(texts, 'give reviews to rate, e.g. reviewstars predict --model DIR "Great food!", or --file')
    rows = predict_texts(model, texts, device=device)
    if as_json:
        out.print_json(json.dumps([{"text": t, **r} for t, r in zip(texts, rows)]))
        return
    from ..presentation.tables import predictions

    out.print(predictions(texts, rows, f"predictions of {model}"))


def _check_batch_size(batch_size: Optional[int]) -> None:
    if batch_size is not None and batch_size < 1:
        raise ReviewstarsError(f"--batch-size must be at least 1, got {batch_size}")


def _stdin_lines() -> list[str]:
    """Standard input's lines, read as a data file is: UTF-8 (a byte order mark dropped), or one
    line naming where it is not (Latin-1 text, a binary file piped by mistake were rated)."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a text stream with no bytes beneath (a test's, an embedding's)
        return [line.rstrip("\r\n") for line in sys.stdin]
    data = raw.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ReviewstarsError(f"standard input: line {line:,}: undecodable bytes at byte {error.start:,} (the text must be "
                               "UTF-8: e.g. iconv -f latin1 -t utf-8 FILE | reviewstars ...)") from None
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and not lines[-1] else lines  # (the newline that ends the last line opens no other)


def _texts_given(texts: Optional[List[str]], none_given: str) -> list[str]:
    """The reviews given as arguments, or with `-` (or none, with input piped in) one a line of standard input."""
    if texts == ["-"] or (not texts and not sys.stdin.isatty()):
        lines = _stdin_lines()
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise ReviewstarsError("no reviews on standard input: give one a line, or as arguments")
        if len(texts) < len(lines):  # one review a line: a blank line is no review
            err.print(f"skipped {len(lines) - len(texts):,} blank line{'s' if len(lines) - len(texts) > 1 else ''} of "
                      "standard input", highlight=False)
    if not texts:
        raise ReviewstarsError(none_given)
    return [without_lone_surrogates(text) for text in texts]  # a shell's undecodable byte, as a data file's and the server's


@app.command()
def explain(
    texts: Optional[List[str]] = typer.Argument(None, help="Reviews to explain; - (or none, with input piped in) reads them "
                                                "from standard input, one a line."),
    model: str = typer.Option(..., "--model", "-m", help="Model folder (any kind, ONNX and ensembles included) or Hub id."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write every word's effect as JSON (a .json path), "
                                          "with a bar chart of the strongest words beside it (.words.png)."),
    top: int = typer.Option(5, "--top", min=1, help="How many of the words that raised (and lowered) each rating to name."),
    # 300: of the shared Yelp reviews, the median has 70 words (and runs of marks), the 95th percentile 271
    max_words: int = typer.Option(300, "--max-words", min=1, help="Words rated per review, from its start: each costs "
                                  "one model call (the rest are shown, not rated)."),
    batch_size: Optional[int] = typer.Option(None, help="Texts per model call (default: the model's own)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the coloured reviews."),
    device: str = DeviceOption,
) -> None:
    """Which words raised or lowered a review's rating: each left out in turn, the change in expected stars."""
    from ..jobs.explain import check_explain_output, explain_texts, write_explanations

    _check_batch_size(batch_size)
    plot = None
    if output is not None:
        output, plot = check_explain_output(output, model)
    texts = _texts_given(texts, 'give reviews to explain, e.g. reviewstars explain --model DIR "Great food, rude staff."')
    found = explain_texts(model, texts, max_words=max_words, batch_size=batch_size, device=device)
    if as_json:  # printed first: a file that cannot be written loses none of it
        out.print_json(json.dumps([item.to_json() for item in found]))
    else:
        from ..presentation.explanations import explanations

        out.print(explanations(found, top), highlight=False)
    if output is not None:
        from ..presentation.plots import PLOT_REVIEWS_AT_MOST

        write_explanations(found, model, output, plot, top)
        drawn = f" (the first {PLOT_REVIEWS_AT_MOST} of {len(found):,} reviews)" if len(found) > PLOT_REVIEWS_AT_MOST else ""
        err.print(f"wrote {escape(str(output))} and {escape(str(plot))}{drawn}", highlight=False)


def _predict_with_ray(model, file, output, column, shard, address, workers, batch_size, device) -> dict:
    if shard:
        raise ReviewstarsError("--shard goes with --engine local: Ray shares the rows among its workers itself")
    try:
        from ..integrations.ray import predict_with_ray
    except ImportError as missing:
        raise ReviewstarsError(f"--engine ray needs Ray Data ({missing.name} is not installed): "
                               "pip install 'reviewstars[ray]'") from None
    from ..progress import library_bars

    return predict_with_ray(model, file, output, column, address=address, workers=workers, batch_size=batch_size,
                            device=device, verbose=library_bars())


@app.command()
def merge(
    parts: List[Path] = typer.Argument(..., help="The outputs of `predict --file ... --shard i/N`, i = 0..N-1."),
    output: Path = typer.Option(..., "--output", "-o", help="The merged predictions, in input order."),
) -> None:
    """Join the outputs of sharded `predict` runs back into one file, in input order."""
    from ..jobs import merge_predictions

    summary = merge_predictions(parts, output)
    out.print(f"merged {summary['parts']} parts, {summary['rows']:,} rows -> {escape(summary['output'])}", highlight=False)


def _serve_groups():
    from ..serving.limits import ServeLimits

    return [(ServeLimits, "Limits")]


@app.command()
@with_settings(_serve_groups)
def serve(
    settings: dict,
    model: str = typer.Option(..., "--model", "-m", help="Model folder (any kind, ONNX included) or Hub id."),
    host: str = typer.Option("127.0.0.1", help="Address to bind: loopback by default; 0.0.0.0 opens it to the network."),
    port: int = typer.Option(8000, help="TCP port (1-65535)."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="A file holding the key clients must send "
                                                "(Authorization: Bearer KEY); or set REVIEWSTARS_API_KEY. /health, / and /docs stay open."),
    device: str = DeviceOption,
    cuda_graphs: bool = typer.Option(True, "--cuda-graphs/--no-cuda-graphs", help="On a GPU, capture each batch shape of a "
                                     "transformer as a CUDA graph at start-up: one launch a batch instead of hundreds."),
) -> None:
    """Serve a model over HTTP: a page at /, POST /predict and /explain, GET /health, /model, /metrics, docs at /docs."""
    from ..serving import serve as run_server
    from ..serving.limits import ServeLimits

    if not 1 <= port <= 65_535:
        raise ReviewstarsError(f"--port must be between 1 and 65535, got {port}")
    if not host.strip():  # (an unset variable, `--host "$HOST"`, bound every interface)
        raise ReviewstarsError("--host is empty: give an address to bind (127.0.0.1, the default, or 0.0.0.0 to open the "
                               "server to the network)")
    api_key = _api_key(api_key_file) if api_key_file is not None else _api_key_from_environment()
    address = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it

    def ready() -> None:  # the port free and the model loaded: only now is it true
        if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"[bold yellow]warning:[/] serving on {escape(host)} without a key: anyone who reaches this address can "
                      "use the model (--api-key-file, or REVIEWSTARS_API_KEY)", highlight=False, soft_wrap=one_line(err))
        err.print(f"serving {escape(model)} on http://{address}:{port} (docs: http://{address}:{port}/docs); Ctrl-C stops",
                  highlight=False)

    run_server(model, host=host, port=port, limits=settings[ServeLimits], device=device, api_key=api_key, cuda_graphs=cuda_graphs,
               on_ready=ready)


def _api_key(path: Path) -> str:
    from ..artifacts import read_small_text

    key = read_small_text(path, "--api-key-file", 64 << 10).strip()
    return _checked_key(key, f"--api-key-file {path}")


def _api_key_from_environment() -> str | None:
    """REVIEWSTARS_API_KEY, held to the file's rules: set but empty is a mistake, not "no key"
    (and a key with spaces could never be sent: clients' headers lose them)."""
    import os

    key = os.environ.get("REVIEWSTARS_API_KEY")
    if key is None:
        return None
    if not key.strip():
        raise ReviewstarsError("REVIEWSTARS_API_KEY is set but empty: give it a key, or unset it to serve without one")
    return _checked_key(key.strip(), "REVIEWSTARS_API_KEY")


def _checked_key(key: str, where: str) -> str:
    if len(key) < 16 or any(c.isspace() for c in key):
        raise ReviewstarsError(f"{where}: the key must be one word of at least 16 characters")
    return key


@app.command()
def export(
    model: str = typer.Option(..., "--model", "-m", help="A transformer model folder or Hub id."),
    output: Path = typer.Option(..., "--output", "-o", help="The ONNX model folder to write: a new one, or an earlier export (never a trained model)."),
    format: str = typer.Option("onnx", "--format", help="The format to export to: onnx (ONNX Runtime)."),
    quantize: Optional[str] = typer.Option(None, help="int8: dynamic quantisation (smaller, faster on CPU)."),
) -> None:
    """Export a transformer to an ONNX folder that `predict` and `serve` load like any model."""
    from ..models.onnx import KIND as ONNX, export_onnx

    if format != ONNX:
        raise ReviewstarsError(f"--format {format!r}: the one format for now is {ONNX}")
    from ..jobs.guard import terminate_cleanly

    with terminate_cleanly():  # SIGTERM unwinds too: the half-made folder goes
        summary = export_onnx(model, output, quantize=quantize)
    out.print(f"wrote {escape(summary['output'])} ({summary['bytes'] / 1e6:.1f} MB{', int8' if quantize else ''})", highlight=False)
