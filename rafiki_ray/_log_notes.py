"""Ray log lines that look alarming but are harmless where rafiki_ray makes them frequent:
each is explained once, as one INFO line, and its repeats are dropped.

* ``Remote file not found: .../result.json`` (``ray.tune.logger.logger``, a WARNING): Tune's
  result loggers copy a trial's ``result.json`` back from the experiment's storage each time the
  trial starts from a checkpoint (``LoggerCallback._restore_from_remote``), which with pausing
  schedulers and PBT is every resume; the storage gets the file only with Tune's periodic sync,
  so a trial that resumes before it finds none. In the same driver the trial keeps appending to
  its file in the local staging directory; its checkpoints and the schedulers' state do not
  depend on that file.

Installed by ``import rafiki_ray`` (a filter on one named logger; Ray is not imported).
"""

from __future__ import annotations

import logging
import re

__all__ = ["NOTES", "install"]

#: logger name -> (pattern of the message, explanation logged once instead)
NOTES: dict[str, tuple[re.Pattern[str], str]] = {
    "ray.tune.logger.logger": (
        re.compile(r"Remote file not found: .*result\.json$"),
        ("Tune found no result.json in the experiment's storage for a trial that resumed from "
        "a checkpoint (it copies the file back on every resume and the storage gets it only "
        "with Tune's periodic sync); harmless: the trial keeps appending to its local "
        "result.json. Said once; repeats of 'Remote file not found: .../result.json' are not "
        "shown."),
    ),
}


class _ExplainOnce(logging.Filter):
    """Turns the first matching WARNING into one INFO explanation and drops the repeats."""

    def __init__(self, pattern: re.Pattern[str], explanation: str) -> None:
        super().__init__()
        self.pattern, self.explanation = pattern, explanation
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not self.pattern.search(record.getMessage()):
            return True
        if self.said:
            return False
        self.said = True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = self.explanation, ()
        return True


def install() -> None:
    """Add the filters (once per logger)."""
    for name, (pattern, explanation) in NOTES.items():
        log = logging.getLogger(name)
        if not any(isinstance(f, _ExplainOnce) for f in log.filters):
            log.addFilter(_ExplainOnce(pattern, explanation))
