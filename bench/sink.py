"""The benchmark's SMTP server: aiosmtpd on 127.0.0.1 in a process of its own (so it
takes no CPU time from the sender it measures), logging one line per accepted mail:

    <accepted at, epoch seconds> <recipient> <Message-ID> <size in bytes>

to a file the benchmark reads for counts, the time of the last mail, losses and duplicates.
"""

import argparse
import re
import threading
import time
from typing import NamedTuple

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-Id:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class LoggingHandler:
    def __init__(self, log_file):
        self.log_file = log_file
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        found = MESSAGE_ID.search(envelope.content[:8192])
        message_id = found.group(1).decode() if found else "-"
        accepted_at = time.time()
        size = len(envelope.content)
        lines = "".join(f"{accepted_at:.6f} {rcpt} {message_id} {size}\n" for rcpt in envelope.rcpt_tos)
        with self.lock:
            self.log_file.write(lines)
            self.log_file.flush()
        return "250 OK"


class Accepted(NamedTuple):
    """One line of a sink log: one mail the sink accepted for one recipient."""

    at: float
    rcpt: str
    message_id: str
    size: int


def read_log(path):
    """Every :class:`Accepted` line of a sink log, in order."""
    rows = []
    with open(path, encoding="utf-8") as log:
        for line in log:
            parts = line.split()
            if len(parts) == 4:
                rows.append(Accepted(float(parts[0]), parts[1], parts[2], int(parts[3])))
    return rows


def count_lines(path):
    with open(path, "rb") as log:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: log.read(1 << 20), b""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    with open(args.log, "a", encoding="utf-8") as log_file:
        controller = Controller(LoggingHandler(log_file), hostname="127.0.0.1", port=args.port, data_size_limit=0)
        controller.start()
        print("ready", flush=True)  # pylint: disable=print-used
        try:
            threading.Event().wait()
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
