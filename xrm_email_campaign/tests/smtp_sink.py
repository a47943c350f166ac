"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it accepts.

Used by the tests as the peer of every send, and by the demo as a catcher
that keeps each mail on disk so nothing leaves the machine:

    python3 xrm_email_campaign/tests/smtp_sink.py --port 2525 --dir var/mails

Addresses steer its answers, so tests can provoke each SMTP outcome:
a local part containing ``reject`` gets ``550`` (permanent), one containing
``tempfail`` gets ``451`` (temporary). ``refuse_all`` makes every RCPT fail
with the given reply, ``delay`` slows every DATA (a slow provider).
"""

import argparse
import asyncio
import email
import email.parser
import email.policy
import logging
import pathlib
import threading
import time

from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO; thousands of mails would drown the test output.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class RecordingHandler:
    def __init__(self, directory=None):
        self.directory = pathlib.Path(directory) if directory else None
        self.messages = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.refuse_all = None
        self.tempfail_enabled = True

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if self.refuse_all:
            return self.refuse_all
        if "reject" in local:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if "tempfail" in local and self.tempfail_enabled:
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        # Keep the raw bytes and answer at once: parsing here would make the sink,
        # not the sender, the bottleneck of every test and measurement.
        record = Delivery(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            content=envelope.content,
            received_at=time.time(),
        )
        with self.lock:
            self.messages.append(record)
            number = len(self.messages)
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{int(time.time() * 1000)}-{number:06d}.eml").write_bytes(envelope.content)
        return "250 Message accepted for delivery"

    def count(self):
        with self.lock:
            return len(self.messages)

    def to(self, address):
        """Messages delivered to ``address``."""
        with self.lock:
            return [m for m in self.messages if address in m["rcpt_tos"]]

    def snapshot(self):
        with self.lock:
            return list(self.messages)


class Delivery(dict):
    """One accepted mail. ``message_id``, ``subject``, ``campaign`` (X-XRM-Campaign)
    and ``body`` (the HTML part) are parsed from ``content`` when first read."""

    HEADERS = {"message_id": "Message-ID", "subject": "Subject", "campaign": "X-XRM-Campaign"}

    def __missing__(self, key):
        if key in self.HEADERS:
            headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(self["content"])
            for name, header in self.HEADERS.items():
                self[name] = headers[header]
        elif key == "body":
            self["body"] = _html_part(email.message_from_bytes(self["content"], policy=email.policy.default))
        else:
            raise KeyError(key)
        return self[key]


def _html_part(message):
    part = message.get_body(preferencelist=("html", "plain"))
    return part.get_content() if part else ""


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1, started and stopped by the tests."""

    def __init__(self, port=0, directory=None):
        self.handler = RecordingHandler(directory)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port or _free_port())

    @property
    def port(self):
        return self.controller.port

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


def _free_port():
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", default="var/mails", help="folder that keeps every mail as a .eml file")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each mail takes, like a slow provider")
    args = parser.parse_args()
    sink = SmtpSink(args.port, args.dir).start()
    sink.handler.delay = args.delay
    print(f"SMTP catcher on 127.0.0.1:{sink.port}, mails kept in {args.dir}", flush=True)  # pylint: disable=print-used
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()
