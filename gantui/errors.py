"""Errors a user can fix. The CLI turns them into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input: a preset key, a path, a checkpoint, a data set. The message is the whole story."""

    exit_code = 2


class ConfigError(UserError):
    """A preset or override that does not validate: names the file, the dotted key and what is expected."""


class CheckpointError(UserError):
    """A checkpoint that is corrupt, truncated, or does not fit the config."""


class DataError(UserError):
    """A data set that cannot be found or downloaded."""
