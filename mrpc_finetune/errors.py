"""The one exception type the CLI turns into a one-line message and exit code 2, and ``redact`` for what it says."""

import re


class UserError(Exception):
    """A problem with the user's recipe, overrides, data, model or run directory.

    The message is a single line that names the offending key, file, row or column and says what to do.
    The CLI prints it as ``error: <message>`` and exits with code 2, with no traceback.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), or its type name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@'\"]*):([^\s/]*)@")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)[^&\s'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every URL in it hidden (``postgresql://user:***@host/db``, also
    ``?password=...``), fit to print or write down: commands, logs, messages, model cards, ``search.json``."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))
