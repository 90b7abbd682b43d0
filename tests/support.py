"""Helpers the test files share (fixtures live in conftest.py): one home for each.

    serving   free_port, running (an app under a real uvicorn in a thread), scrape (/metrics), post_json
    training  fast (TrainSettings that learn the synthetic reviews in seconds), tiny_scratch (the smallest
              scratch encoder that learns them), tiny_run (a tiny encoder, trained)
    commands  run_cli (the CLI in this process: exit code, stdout, stderr), reviewstars (the CLI in a process of
              its own), tiny_cli / TINY_CLI (the tiny settings as CLI flags), cli_command, cli_env, run_command,
              train_args, train_command, start_and_signal
    inputs    ODD_TEXTS (texts that have broken tokenizers and scanners before)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import torch
import uvicorn

from reviewstars.data import load_data
from reviewstars.models.encoder import EncoderConfig, EncoderForStarRating
from reviewstars.tokenization import train_wordpiece
from reviewstars.training import TrainSettings, train_transformer

# --------------------------------------------------------------------------- serving


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app, **options) -> Iterator[str]:
    """`app` behind a real uvicorn on a free loopback port, in a thread of this process
    (`options`: more of uvicorn's Config, e.g. the HTTP protocol `serve` uses)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def scrape(url: str) -> dict[str, float]:
    """GET /metrics, parsed by `prometheus_client`'s own parser: {'name{labels}': value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=")
    return {
        sample.name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items())) + "}" if sample.labels else ""): sample.value
        for family in text_string_to_metric_families(response.text) for sample in family.samples
    }


def post_json(client, url: str, body) -> httpx.Response:
    """POST `body` as ASCII JSON: httpx's own encoder cannot write a lone surrogate."""
    return client.post(url, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


# --------------------------------------------------------------------------- training


def fast(**overrides) -> TrainSettings:
    """Trainer settings that learn the synthetic reviews in a few seconds (6 passes unless told)."""
    settings = dict(learning_rate=3e-3, epochs=6, eval_steps=20, logging_steps=20, max_length=32, early_stopping=None)
    return TrainSettings(**{**settings, **overrides})


def tiny_scratch(**changes):
    """The smallest scratch encoder that still learns the synthetic reviews: one layer, width 32."""
    from dataclasses import replace

    from reviewstars.kinds import ScratchSettings

    return replace(ScratchSettings(layers=1, width=32, heads=2, feed_forward=64, vocab_size=200), **changes)


TOKENIZERS = {}


def tiny_run(tiny_data, output, settings, callbacks=None):
    data = load_data(tiny_data)
    if tiny_data not in TOKENIZERS:  # one vocabulary for every run, as a resumed run reuses its own
        TOKENIZERS[tiny_data] = train_wordpiece(data["train"]["text"], vocab_size=200)
    tokenizer = TOKENIZERS[tiny_data]
    torch.manual_seed(0)
    model = EncoderForStarRating(EncoderConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=32))
    outcome = train_transformer(model, tokenizer, data["train"].select(range(300)), data["validation"].select(range(60)), output, settings, callbacks)
    return model, outcome


# --------------------------------------------------------------------------- commands


def tiny_cli(epochs: int = 4) -> list[str]:
    """`tiny_scratch()` and quick Trainer settings as `train` flags."""
    return ["--model", "scratch", "--layers", "1", "--width", "32", "--heads", "2", "--vocab-size", "200", "--dropout", "0",
            "--max-length", "32", "--learning-rate", "3e-3", "--epochs", str(epochs), "--eval-steps", "10",
            "--early-stopping", "0", "--dev-size", "48"]


TINY_CLI = tiny_cli()


class _Script:
    """What `CliRunner` invokes: the `reviewstars` script's `main()` (its one-line errors and exit
    codes around the app), with `args` as its command line."""

    name = "reviewstars"

    def main(self, args=(), prog_name=None, **_):
        from reviewstars.cli.main import main

        argv = sys.argv
        sys.argv = [prog_name or self.name, *args]
        try:
            main()
        finally:
            sys.argv = argv


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """What a command may change in the process that runs it, given back afterwards, so that one
    run in this process leaks nothing into the next test: the environment, the working folder,
    log levels, warning filters, the SIGINT/SIGTERM handlers and torch's thread count."""
    import logging
    import signal
    import warnings

    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    levels = {logger: logger.level for logger in loggers}
    environ, folder, filters = dict(os.environ), os.getcwd(), warnings.filters[:]
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update((name, value) for name, value in environ.items() if os.environ.get(name) != value)
        os.chdir(folder)
        for logger, level in levels.items():
            logger.setLevel(level)
        warnings.filters[:] = filters
        for signum, handler in handlers.items():
            if handler is not None:  # None: not set from Python, nothing to give back
                signal.signal(signum, handler)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def run_cli(*args, env: dict | None = None, columns: int = 160, input: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in this process, answering as `reviewstars(*args)` would (exit code, stdout, stderr
    apart; an uncaught exception's traceback on stderr with exit code 1) without a new interpreter
    and torch to start. `env`: variables set (None: unset) for this call only; `input`: standard input.
    For what only a fresh process shows (start-up and imports, the libraries' noise, `--verbose`,
    signals, variables read at import), `reviewstars`."""
    import inspect

    from click.testing import CliRunner

    # click < 8.2 mixes stderr into stdout unless told not to; later ones always keep it apart
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in inspect.signature(CliRunner).parameters else CliRunner()
    with _process_state_kept():
        result = runner.invoke(_Script(), [str(arg) for arg in args], input=input, env={"COLUMNS": str(columns), **(env or {})})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))  # as Python prints it, "Traceback ..." first
    return subprocess.CompletedProcess(["reviewstars", *map(str, args)], result.exit_code, result.stdout, stderr)


def cli_command(*args) -> list[str]:
    """The command line that runs the CLI in a new process."""
    return [sys.executable, "-m", "reviewstars.cli", *map(str, args)]


def reviewstars(*args, env: dict | None = None, columns: int = 160, timeout: float = 300,
                python_flags: tuple = ()) -> subprocess.CompletedProcess:
    """The CLI as a shell runs it, in a process of its own (start-up, exit code, what it prints):
    for what an in-process call (`run_cli`) cannot show. `env` replaces the environment (default: this one)."""
    base = dict(os.environ if env is None else env)
    return subprocess.run([sys.executable, *python_flags, "-m", "reviewstars.cli", *map(str, args)], capture_output=True,
                          text=True, env={**base, "COLUMNS": str(columns)}, timeout=timeout)


def cli_env() -> dict[str, str]:
    # One thread: the same arithmetic in every process, so results can be compared exactly.
    return {**os.environ, "OMP_NUM_THREADS": "1", "REVIEWSTARS_QUIET": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def start_and_signal(command: list[str], checkpoints: Path, signum: int, timeout: float = 120) -> tuple[int, str]:
    """Start a training and send `signum` the moment its first checkpoint folder appears
    (while the checkpoint is still being written, more often than not); (exit code, stderr)."""
    log = checkpoints.parent.with_name(checkpoints.parent.name + ".stderr")
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        deadline = time.time() + timeout
        while time.time() < deadline and process.poll() is None:
            if checkpoints.is_dir() and any(p.name.startswith("checkpoint-") for p in checkpoints.iterdir()):
                process.send_signal(signum)
                break
            time.sleep(0.005)
        process.wait(timeout=timeout)
    return process.returncode, log.read_text()


def train_args(data: Path, output: Path, *extra) -> list[str]:
    """`train` on `data` into `output` with the tiny settings (`TINY_CLI`), then `extra`."""
    return ["train", "--data", str(data), "--output", str(output), *TINY_CLI, *map(str, extra)]


def train_command(data: Path, output: Path, *extra) -> list[str]:
    """The same, as the command line of a process of its own."""
    return cli_command(*train_args(data, output, *extra))


def run_command(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- inputs

ODD_TEXTS = [
    "", "   ", "a", "I I I I", "Ünïcödé ÇAFÉ straße İstanbul ΣΊΣΥΦΟΣ", "tab\tnew\nline\r\n", "emoji 🍕🍕 pizza!!",
    "x" * 5000, "12 34 5 678 90", "snake_case words_like_this", "日本語のレビュー とても 美味しい", "\x00\x01 control \x7f",
    "the the the food food", "combining e\u0301 marks a\u0308", "dash-separated-words and... dots",
    # ASCII reviews take the translate-and-split scan: one-letter words between a bigram's words,
    # digits, underscores, every ASCII whitespace and punctuation mark
    "a good a food", "I was x good food", "A1 b2 _ __ x_y 9 99", "can't won't I'm", "form\x0bfeed\x0cand\x1fcontrol",
    "UPPER lower MiXeD GOOD Food", "good,food;good.food!good?food", "".join(chr(c) for c in range(128)),
]
