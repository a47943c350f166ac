"""Fixtures of the end-to-end tests: a real Odoo server process, a real PostgreSQL
database and a real SMTP server (aiosmtpd) on 127.0.0.1."""

import os

import pytest

from scripts.devdb import drop_database

from .odoo_process import OdooServer, new_database_from

TEMPLATE = os.environ.get("XRM_E2E_TEMPLATE", "xrm_e2e_template")


@pytest.fixture
def smtp_sink():
    # imported here: the addon is importable only once pytest-odoo has set the addons path
    from odoo.addons.xrm_email_campaign.tests.smtp_sink import SmtpSink  # noqa: PLC0415

    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def e2e_database():
    name = new_database_from(TEMPLATE)
    yield name
    drop_database(name)


@pytest.fixture
def odoo_server(e2e_database, tmp_path):
    """A factory: ``odoo_server(workers=2)`` starts a server on the test's database."""
    servers = []

    def start(workers=0, extra_args=(), env=None):
        server = OdooServer(e2e_database, tmp_path, workers=workers, extra_args=extra_args, env=env).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
