"""The live monitor: a Textual app over the training engine.

This is the only package that imports textual, and it does so lazily: `gantui.ui.launch`
imports nothing heavy at module level, so the CLI can import it for free.
"""
