"""Set up and read back a campaign over XML-RPC, as an outside client would."""

import collections

from scripts.devdb import pg_connect

ACCOUNT_EMAIL = "campaigns@example.com"


def create_campaign(server, sink, recipients, name="E2E campaign"):
    """An account on the sink, ``recipients`` partners linked to a new campaign; returns its id."""
    mail_server = server.rpc(
        "ir.mail_server",
        "create",
        {
            "name": "E2E sink",
            "smtp_host": "127.0.0.1",
            "smtp_port": sink.port,
            "smtp_encryption": "none",
        },
    )
    account = server.rpc(
        "xrm.email.account",
        "create",
        {
            "name": "E2E",
            "email_from": ACCOUNT_EMAIL,
            "mail_server_id": mail_server,
        },
    )
    partner_ids = server.rpc(
        "res.partner",
        "create",
        [{"name": f"Recipient {index}", "email": f"r{index}@example.org"} for index in range(recipients)],
    )
    campaign = server.rpc(
        "xrm.email.campaign",
        "create",
        {
            "name": name,
            "account_id": account,
            "subject": "Hello {{ recipient.first_name }}",
            "body_html": "<p>Dear {{ recipient.name }}, this is {{ campaign.name }}.</p>",
        },
    )
    server.rpc("xrm.email.campaign", "add_partners", [campaign], partner_ids)
    return campaign


def create_user(server, login, group):
    return server.rpc(
        "res.users",
        "create",
        {
            "name": login.title(),
            "login": login,
            "password": login,
            "groups_id": [(6, 0, [record_id(server, f"xrm_email_campaign.{group}")])],
        },
    )


def record_id(server, xmlid):
    module, name = xmlid.split(".")
    rows = server.rpc("ir.model.data", "search_read", [("module", "=", module), ("name", "=", name)], ["res_id"])
    return rows[0]["res_id"]


def status(server, campaign, login="admin", password="admin"):
    return server.rpc(
        "xrm.email.campaign",
        "read",
        [campaign],
        [
            "state",
            "total_count",
            "sent_count",
            "failed_count",
            "pending_count",
            "progress",
            "started_by_id",
            "started_at",
            "finished_at",
            "results_sent_at",
        ],
        login=login,
        password=password,
    )[0]


def campaign_state_in_database(dbname, campaign):
    """Read the state straight from PostgreSQL, for when the server is down."""
    connection = pg_connect(dbname)
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM xrm_email_campaign WHERE id = %s", [campaign])
        state = cursor.fetchone()[0]
        cursor.execute(
            "SELECT state, count(*) FROM xrm_email_campaign_recipient WHERE campaign_id = %s GROUP BY state",
            [campaign],
        )
        counts = dict(cursor.fetchall())
    connection.close()
    return state, counts


def deliveries(sink, recipients):
    """Per recipient address, the Message-IDs the sink accepted (campaign mails only)."""
    by_address = collections.defaultdict(list)
    for message in sink.handler.snapshot():
        for address in message["rcpt_tos"]:
            if address != ACCOUNT_EMAIL:
                by_address[address].append(message["message_id"])
    expected = {f"r{index}@example.org" for index in range(recipients)}
    lost = expected - set(by_address)
    duplicates = sum(len(ids) - 1 for ids in by_address.values())
    return by_address, lost, duplicates


def results_mails(sink):
    return [m for m in sink.handler.snapshot() if m["rcpt_tos"] == [ACCOUNT_EMAIL]]
