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
        "", "--name", help="Model name the API reports and accepts (default: the spec); other names get 404."
    ),
    api_key_env: str = typer.Option(
        "", "--api-key-env", help="Environment variable holding an API key; requests without "
        "'Authorization: Bearer <key>' then get 401. Without it, bind loopback only."
    ),
    max_context: int = typer.Option(
        0, "--max-context", help="Context in tokens (prompt + new); 0 = the model config's. Longer prompts get "
        "400 and max_tokens is capped at the room left."
    ),
    max_body_mb: float = typer.Option(4.0, "--max-body-mb", help="Largest request body in MiB (413 above)."),
) -> None:
    """Serve MODEL with OpenAI-compatible /v1/chat/completions, /v1/completions and /v1/models.

    Requests support max_tokens, temperature (0 = greedy), top_p, stop, seed and logprobs/top_logprobs.
    One request cannot stall the server: prompts past the context are refused (400), max_tokens/min_tokens
    are capped at the context, bodies are limited, generation stops when the client disconnects, and
    SIGTERM stops the server at the next token.

    Examples:

      selbench serve --model smollm2-135m-instruct --port 8000

      selbench eval alpacaeval --model my-run/model --baseline gpt4_1106_preview \\
          --judge smollm2-135m-instruct --judge-base-url http://127.0.0.1:8000/v1 --limit 5

      MY_KEY=secret selbench serve --model smollm2-135m-instruct --host 0.0.0.0 --api-key-env MY_KEY
    """
    import os

    from selbench.errors import InputError
    from selbench.generation.server import ServeOptions, create_app, run_server
    from selbench.generation.server_http import bind_warning

    if not 0 < port < 65536:
        raise InputError(f"{port}: must be in 1..65535", field="port")
    if max_context < 0:
        raise InputError(f"{max_context}: must be >= 0 (0 = the model's own)", field="max-context")
    if not (0 < max_body_mb <= 1024):  # also refuses nan
        raise InputError(f"{max_body_mb}: must be in (0, 1024] MiB", field="max-body-mb")
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"${api_key_env} is not set or empty", field="api-key-env")
    warning = bind_warning(host, api_key)
    if warning:
        log.warning("%s", warning)
    options = ServeOptions(
        context=max_context or None, max_body_bytes=int(max_body_mb * 1024 * 1024), api_key=api_key
    )
    from selbench.assets import load_model

    loaded_model, tokenizer = load_model(model)
    try:
        app = create_app(loaded_model, tokenizer, name or model, options)
    except ValueError as exc:  # no context length in the model config
        raise InputError(str(exc), field="max-context") from None
    log.info("serving %s on http://%s:%d/v1 (context %d tokens)", name or model, host, port, app.state.context)
    run_server(app, host, port)
