"""`selbench serve`: an OpenAI-compatible endpoint over a local model (a judge for offline users and tests)."""

from __future__ import annotations

import logging

import typer

from selbench.cli.common import handle_errors

log = logging.getLogger(__name__)


@handle_errors
def serve(
    model: str = typer.Option(
        ..., "--model", help="Model spec: packaged asset name, local directory or hf://org/name."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind; loopback by default."),
    name: str = typer.Option(
        "", "--name", help="Model name the API reports and accepts (default: the spec)."
    ),
) -> None:
    """Serve MODEL with OpenAI-compatible /v1/chat/completions, /v1/completions and /v1/models.

    Requests support max_tokens, temperature (0 = greedy), top_p, stop, seed and logprobs/top_logprobs.

    Examples:

      selbench serve --model smollm2-135m-instruct --port 8000

      selbench eval alpacaeval --model my-run/model --baseline gpt4_1106_preview \\
          --judge smollm2-135m-instruct --judge-base-url http://127.0.0.1:8000/v1 --limit 5
    """
    import uvicorn

    from selbench.generation.server import create_app

    if not 0 < port < 65536:
        raise ValueError(f"--port {port}: must be in 1..65535")
    from selbench.assets import load_model

    loaded_model, tokenizer = load_model(model)
    app = create_app(loaded_model, tokenizer, name or model)
    log.info("serving %s on http://%s:%d/v1", name or model, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
