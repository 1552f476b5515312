"""Report: the study's answer as one self-contained HTML page, with its Markdown and JSON (`selbench report`).

Modules: `run_folder` (the only I/O: reads a run folder), `study` (builds and writes the report), `answer`
(the verdict section), `against_random` / `relations` (the figures' sections), `provenance` (cost tables and
provenance), `honesty` (the caveats banner), `figures` (matplotlib -> inline SVG), `html` (HTML, Markdown and
terminal text), `document` (the format-independent content), `format` (numbers for people), `labels`.
`summary` is the older flat-table report, kept for `selbench.api.write_report`.
"""
