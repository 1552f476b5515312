"""Reports: HTML, Markdown and JSON built from analysis tables."""
