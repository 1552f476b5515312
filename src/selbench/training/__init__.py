"""Supervised fine-tuning on a selection: templates with exact label masks, the study's presets, one TRL path.

Light to import: torch, transformers, trl and peft are imported inside the functions that use them.
"""
