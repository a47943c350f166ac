"""Real Odoo server processes for the end-to-end tests.

Each test gets its own database, copied from a template that has the addon
installed (``XRM_E2E_TEMPLATE``, made by ``scripts/test``), and its own
server on a free port, talked to over XML-RPC like any outside client.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
import xmlrpc.client
from pathlib import Path

from scripts.devdb import copy_database, odoo_addons_path

# What the sending cron logs after each run (xrm.email.campaign._cron_send_campaigns).
PROCESSED_LOG_LINE = re.compile(r"Processed (\d+) campaign mails")


def db_args():
    args = []
    for option, variable in (("--db_host", "PGHOST"), ("--db_port", "PGPORT"), ("--db_user", "PGUSER")):
        if os.environ.get(variable):
            args += [option, os.environ[variable]]
    return args


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_database_from(template):
    """A copy of the template under a fresh name, for one test."""
    name = f"xrm_e2e_{uuid.uuid4().hex[:10]}"
    copy_database(template, name)
    return name


class OdooServer:
    """One ``python3 -m odoo`` process on 127.0.0.1, threaded or with --workers."""

    def __init__(self, dbname, log_dir, workers=0, extra_args=(), env=None):
        self.dbname = dbname
        # Several servers may share one database: each keeps a log of its own.
        self.name = f"{dbname}-{uuid.uuid4().hex[:6]}"
        self.workers = workers
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.log_dir = Path(log_dir)
        self.port = free_port()
        self.process = None
        self.starts = 0
        self._uids = {}

    @property
    def log_path(self):
        return self.log_dir / f"odoo-{self.name}-{self.starts}.log"

    def start(self, timeout=90):
        self.starts += 1
        self.port = free_port() if self.starts > 1 else self.port
        command = [
            sys.executable,
            "-m",
            "odoo",
            "--database",
            self.dbname,
            "--db-filter",
            f"^{self.dbname}$",
            "--no-database-list",
            "--addons-path",
            odoo_addons_path(),
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--gevent-port",
            str(free_port()),
            "--workers",
            str(self.workers),
            "--max-cron-threads",
            "1",
            "--logfile",
            str(self.log_path),
            "--log-level",
            "info",
            *db_args(),
            *self.extra_args,
        ]
        environment = {**os.environ, "TZ": "UTC", **self.env}
        self.process = subprocess.Popen(
            command,
            env=environment,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Odoo exited with {self.process.returncode}; see {self.log_path}")
            try:
                self.models().execute_kw(self.dbname, self.uid(), "admin", "res.users", "search", [[]], {"limit": 1})
                return
            except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
                time.sleep(0.3)
        raise TimeoutError(f"Odoo did not answer within {timeout}s; see {self.log_path}")

    def uid(self, login="admin", password="admin"):
        """Log in once per login: hashing a password takes Odoo most of a second."""
        if login not in self._uids:
            common = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/xmlrpc/2/common")
            self._uids[login] = common.authenticate(self.dbname, login, password, {})
        return self._uids[login]

    def models(self):
        return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/xmlrpc/2/object", allow_none=True)

    def rpc(self, model, method, *args, login="admin", password="admin", **kwargs):
        uid = self.uid(login, password)
        return self.models().execute_kw(self.dbname, uid, password, model, method, list(args), kwargs)

    def kill(self):
        """kill -9 the whole server (its workers too): the crash the send must survive."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self):
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob(f"odoo-{self.name}-*.log"))
        )

    def mails_processed(self):
        """How many campaign mails this server's cron runs sent or failed, from its log."""
        return sum(map(int, PROCESSED_LOG_LINE.findall(self.logs())))


def wait_for(predicate, timeout, interval=0.5, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{message} not reached within {timeout}s")
