"""The `selbench` command line: thin typer commands over the stage packages."""
