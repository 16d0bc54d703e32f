"""The training engine: the loop, its commands and its events. Never imports textual."""
