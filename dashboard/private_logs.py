"""Keeps patient data out of the server log: an uncaught error is logged by type and place, never by its message.

Streamlit writes the traceback of an error a page did not catch to its log (the service journal).
A database error's message can quote the row it refused (PostgreSQL's "Key (patient_id)=(...)
already exists", "Failing row contains (...)"), so the message is withheld; the screen already
shows only the error's type (`client.showErrorDetails = "type"`).
"""

from __future__ import annotations

import logging
import traceback

#: Streamlit's loggers that write the traceback of an uncaught page error.
STREAMLIT_ERROR_LOGGERS = ("streamlit.error_util", "streamlit.runtime.fragment",
                           "streamlit.runtime.scriptrunner.script_runner")
WITHHELD = "message withheld from the log: it may quote patient data"


def _names(exc: BaseException | None) -> str:
    """'OperationalError <- OperationalError': the error and the errors it came from, by type only."""
    seen, names = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        names.append(type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(names)


class WithholdErrorMessages(logging.Filter):
    """Rewrites a record that carries an exception: its type names and stack frames stay, its message goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            _, exc, tb = record.exc_info
            frames = "".join(traceback.format_tb(tb))
            record.msg = f"{record.getMessage()}: {_names(exc)} ({WITHHELD})\n{frames}".rstrip()
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def install() -> None:
    """Attach the filter to Streamlit's error loggers once per process (the app calls it on every run)."""
    for name in STREAMLIT_ERROR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithholdErrorMessages) for f in logger.filters):
            logger.addFilter(WithholdErrorMessages())
