"""`selbench` entry point. Sub-commands live in one module each and are mounted here."""

from __future__ import annotations

import importlib
import os
import sys
import warnings

# Idle OpenMP threads must sleep rather than spin: on a shared CPU, spinning makes torch 10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from selbench.cli.common import DEBUG_ENV, setup_logging

# alpaca_eval imports pkg_resources at import time; its deprecation notice is not the user's concern.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

app = typer.Typer(
    name="selbench",
    help=(
        "Does an instruction-selection strategy beat random sampling on your data, at your budget, "
        "judged by your benchmarks -- and is it worth its cost?\n\n"
        "Examples:\n\n"
        "  selbench demo --json\n\n"
        "  selbench data prepare --source sharegpt --input sharegpt --out runs/sharegpt\n\n"
        "  selbench select longest --data runs/sharegpt --budget 1000 --out longest.json --json"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    if debug:
        os.environ[DEBUG_ENV] = "1"
    setup_logging(verbose)


# (module, attribute, name): sub-apps (typer.Typer) are mounted as groups, functions as commands.
_SUBCOMMANDS = [
    ("selbench.cli.data_cmd", "app", "data"),
    ("selbench.cli.assets_cmd", "app", "assets"),
    ("selbench.cli.cache_cmd", "app", "cache"),
    ("selbench.cli.score_cmd", "app", "score"),
    ("selbench.cli.select_cmd", "app", "select"),
    ("selbench.cli.train_cmd", "train", "train"),
    ("selbench.cli.eval_cmd", "app", "eval"),
    ("selbench.cli.serve_cmd", "serve", "serve"),
    ("selbench.cli.cost_cmd", "cost", "cost"),
    ("selbench.cli.run_cmd", "run", "run"),
    ("selbench.cli.report_cmd", "report", "report"),
    ("selbench.cli.demo_cmd", "demo", "demo"),
]


def _mount() -> None:
    for module_name, attr, name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # not written yet
                continue
            raise
        obj = getattr(module, attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name=name)(obj)


_mount()


def main() -> None:
    """Console entry point: click's usage errors become one `error: ...` line and exit 2 (DESIGN.md)."""
    try:  # typer >= 0.26 vendors click as typer._click; older typer uses click itself
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as click_errors

    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # a bare group: typer has printed its help already
        if exc.format_message().strip():
            exc.show()
        sys.exit(exc.exit_code)
    except click_errors.UsageError as exc:  # unknown option or command, missing or bad value
        message = " ".join(exc.format_message().split())
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        sys.stderr.write(f"error: {message}{where}\n")
        sys.exit(2)
    except click_errors.ClickException as exc:
        sys.stderr.write(f"error: {' '.join(exc.format_message().split())}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
