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


def one_line(text: str, width: int = 600) -> str:
    """A message as one line: newlines and other control characters (from file names) escaped."""
    out = "".join(c if c >= " " or c == "\t" else repr(c)[1:-1] for c in str(text))
    return out if len(out) <= width else out[: width - 3] + "..."


def report(e: UserError) -> int:
    """What every command does with a UserError: one line on stderr, `gantui: <message>`; returns the
    exit code (2). The one place the line is made (cli, eval, sample)."""
    import sys

    print(f"gantui: {one_line(str(e))}", file=sys.stderr)
    return e.exit_code
