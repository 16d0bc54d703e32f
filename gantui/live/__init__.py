"""Reaching a live run from another process: the control channel's protocol and client, and the
follower that turns a run directory's files into the engine's messages (for `gantui watch`).

Torch-free and textual-free: `gantui stop`, `gantui runs` and `watch` start instantly.
"""
