"""Watch, inspect and steer xrm_email_campaign sends from outside Odoo.

The logic behind ``campaign_ops.ipynb``: connection, queries, stall detection
and actions, over Odoo's external API (XML-RPC) with the person's own login
or API key, so Odoo's access rights apply to everything done here. Nothing
needs the server's files. The notebook only wires widgets to this module.

    ops = CampaignOps.from_env()          # XRM_OPS_URL, _DB, _LOGIN, _PASSWORD (or _API_KEY)
    for campaign in ops.campaigns(): ...
    ops.cancel(campaign_id)

Every failure a person can cause or meet (a wrong password, an unknown
database, a server that is down, a missing right, a refused action) raises
:class:`OpsError` with one line that says what and where.
"""

import csv
import http.client
import io
import os
import socket
import xmlrpc.client
from dataclasses import dataclass, field
from datetime import datetime, timedelta

CAMPAIGN = "xrm.email.campaign"
RECIPIENT = "xrm.email.campaign.recipient"
CAMPAIGN_FIELDS = [
    "name",
    "state",
    "progress",
    "total_count",
    "sent_count",
    "failed_count",
    "pending_count",
    "cancelled_count",
    "started_by_id",
    "started_at",
    "scheduled_at",
    "finished_at",
    "write_date",
]
FAILED_FIELDS = ["partner_id", "email", "error_message", "failure_kind", "attempt_count", "write_date"]
ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"
PAGE_SIZE = 5000


class OpsError(Exception):
    """A failure explained in one line, fit to show as is."""


def parse_datetime(value):
    """Odoo's external API sends datetimes as UTC strings, and False for none."""
    return datetime.strptime(value[:19], ODOO_DATETIME) if value else None


def _fault_line(fault):
    """The message of an Odoo fault: its first line for a user error, the last for a traceback."""
    lines = [line.strip() for line in str(fault.faultString).strip().splitlines() if line.strip()]
    if not lines:
        return "the server refused the request"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


# -- connection -----------------------------------------------------------------


@dataclass
class CampaignOps:
    """One person's session on one Odoo database."""

    url: str
    database: str
    login: str
    password: str = field(repr=False)
    timeout: float = 30.0
    uid: int = None
    last_server_time: datetime = None  # the server's clock at the last diagnostics() call

    @classmethod
    def from_env(cls, environ=None):
        """Settings from XRM_OPS_URL, XRM_OPS_DB, XRM_OPS_LOGIN and XRM_OPS_PASSWORD or XRM_OPS_API_KEY."""
        environ = os.environ if environ is None else environ
        missing = [name for name in ("XRM_OPS_URL", "XRM_OPS_DB", "XRM_OPS_LOGIN") if not environ.get(name)]
        secret = environ.get("XRM_OPS_API_KEY") or environ.get("XRM_OPS_PASSWORD")
        if not secret:
            missing.append("XRM_OPS_PASSWORD or XRM_OPS_API_KEY")
        if missing:
            raise OpsError(f"Missing settings: {', '.join(missing)} (set them, or fill in the form)")
        return cls(environ["XRM_OPS_URL"], environ["XRM_OPS_DB"], environ["XRM_OPS_LOGIN"], secret)

    def _proxy(self, endpoint):
        return xmlrpc.client.ServerProxy(
            f"{self.url.rstrip('/')}/xmlrpc/2/{endpoint}",
            allow_none=True,
            transport=_TimeoutTransport(self.timeout, self.url),
        )

    def _network(self, call):
        """Run one XML-RPC call, turning network trouble into one line."""
        try:
            return call()
        except ConnectionRefusedError as error:
            raise OpsError(
                f"Odoo at {self.url} is not reachable: connection refused (is the server running?)"
            ) from error
        except TimeoutError as error:
            raise OpsError(f"Odoo at {self.url} did not answer within {self.timeout:.0f} s") from error
        except socket.gaierror as error:
            raise OpsError(f"Odoo at {self.url} is not reachable: unknown host") from error
        except OSError as error:
            raise OpsError(f"Odoo at {self.url} is not reachable: {error}") from error
        except xmlrpc.client.ProtocolError as error:
            raise OpsError(
                f"{self.url} did not answer like Odoo's external API: HTTP {error.errcode} {error.errmsg}"
            ) from error
        except (http.client.HTTPException, xmlrpc.client.ResponseError) as error:
            raise OpsError(f"{self.url} did not answer like Odoo's external API: {error}") from error

    def connect(self):
        """Log in and check that the addon is there and readable; return self."""
        common = self._proxy("common")
        try:
            uid = self._network(lambda: common.authenticate(self.database, self.login, self.password, {}))
        except xmlrpc.client.Fault as fault:
            message = _fault_line(fault)
            if "does not exist" in message or "database" in message.lower():
                raise OpsError(f"Database '{self.database}' does not exist on {self.url}") from fault
            raise OpsError(f"Login on {self.url} failed: {message}") from fault
        if not uid:
            raise OpsError(
                f"Login refused for '{self.login}' on database '{self.database}' at {self.url}: "
                "wrong login, password or API key"
            )
        self.uid = uid
        try:
            self.diagnostics()
        except OpsError as error:
            if "doesn't exist" in str(error) or "does not exist" in str(error):
                raise OpsError(
                    f"The addon xrm_email_campaign is not installed in database '{self.database}' at {self.url}"
                ) from error
            raise OpsError(f"'{self.login}' may not read e-mail campaigns: {error}") from error
        return self

    def call(self, model, method, *args, **kwargs):
        """One method of one model, as this person; a refusal becomes an OpsError with the server's words."""
        if self.uid is None:
            self.connect()
        models = self._proxy("object")
        try:
            return self._network(
                lambda: models.execute_kw(self.database, self.uid, self.password, model, method, list(args), kwargs)
            )
        except xmlrpc.client.Fault as fault:
            raise OpsError(_fault_line(fault)) from fault

    # -- queries ------------------------------------------------------------------

    def diagnostics(self):
        """Whether the sending cron is active, when it last ran, and the server's clock."""
        values = self.call(CAMPAIGN, "get_sending_diagnostics")
        self.last_server_time = parse_datetime(values["server_time"])
        return {
            "cron_active": values["cron_active"],
            "cron_lastcall": parse_datetime(values["cron_lastcall"]),
            "cron_nextcall": parse_datetime(values["cron_nextcall"]),
            "server_time": parse_datetime(values["server_time"]),
        }

    def campaigns(self, domain=()):
        """Every campaign this person may read, newest first, with counts and the last mail sent."""
        rows = self.call(CAMPAIGN, "search_read", list(domain), CAMPAIGN_FIELDS, order="id desc")
        last_sent = self._last_sent_at([row["id"] for row in rows])
        return [_campaign_from_row(row, last_sent.get(row["id"])) for row in rows]

    def campaign(self, campaign_id):
        found = self.campaigns([("id", "=", campaign_id)])
        if not found:
            raise OpsError(f"Campaign {campaign_id} does not exist or you may not read it")
        return found[0]

    def _last_sent_at(self, campaign_ids):
        if not campaign_ids:
            return {}
        groups = self.call(
            RECIPIENT,
            "read_group",
            [("campaign_id", "in", campaign_ids), ("state", "=", "sent")],
            ["sent_at:max"],
            ["campaign_id"],
            lazy=False,
        )
        return {group["campaign_id"][0]: parse_datetime(group["sent_at"]) for group in groups}

    def stalls(self, campaigns, stall_after, diagnostics=None):
        """The stalled sends among ``campaigns``, by campaign id, each with its likely reason."""
        diagnostics = diagnostics or self.diagnostics()
        now = diagnostics["server_time"]
        stalls = {}
        for campaign in campaigns:
            if is_idle(campaign, now, stall_after):
                stalls[campaign.id] = find_stall(
                    campaign, now, stall_after, diagnostics, self.recent_errors(campaign.id)
                )
        return stalls

    def recent_errors(self, campaign_id, limit=20):
        """The latest error messages of a campaign's recipients (postponed or failed), newest first."""
        rows = self.call(
            RECIPIENT,
            "search_read",
            [("campaign_id", "=", campaign_id), ("error_message", "!=", False)],
            ["state", "error_message", "write_date"],
            order="write_date desc, id desc",
            limit=limit,
        )
        return [row["error_message"] for row in rows]

    def failed_recipients(self, campaign_id, text="", kind=None):
        """Failed recipients with their error, filtered by a text (name, address or error) and a kind."""
        domain = [("campaign_id", "=", campaign_id), ("state", "=", "failed")]
        if kind:
            domain.append(("failure_kind", "=", kind))
        if text:
            domain += ["|", "|", ("partner_id.name", "ilike", text), ("email", "ilike", text)]
            domain.append(("error_message", "ilike", text))
        rows = self._search_read_all(RECIPIENT, domain, FAILED_FIELDS, order="id")
        return [
            {
                "id": row["id"],
                "name": row["partner_id"][1] if row["partner_id"] else "",
                "email": row["email"] or "",
                "error": row["error_message"] or "",
                "kind": row["failure_kind"] or "",
                "tries": row["attempt_count"],
                "failed_at": parse_datetime(row["write_date"]),
            }
            for row in rows
        ]

    def link_type_breakdown(self, campaign_id):
        """How many links of the campaign have each link type, e.g. {'Unspecified': 3, ...}."""
        groups = self.call(
            RECIPIENT, "read_group", [("campaign_id", "=", campaign_id)], ["link_type_id"], ["link_type_id"], lazy=False
        )
        return {group["link_type_id"][1] if group["link_type_id"] else "": group["__count"] for group in groups}

    def send_times(self, campaign_id):
        """When each mail of the campaign was accepted by the SMTP server, in order."""
        rows = self._search_read_all(
            RECIPIENT, [("campaign_id", "=", campaign_id), ("state", "=", "sent")], ["sent_at"], order="sent_at, id"
        )
        return [parse_datetime(row["sent_at"]) for row in rows if row["sent_at"]]

    def _search_read_all(self, model, domain, fields, order):
        rows, offset = [], 0
        while True:
            page = self.call(model, "search_read", domain, fields, order=order, offset=offset, limit=PAGE_SIZE)
            rows += page
            if len(page) < PAGE_SIZE:
                return rows
            offset += PAGE_SIZE

    # -- actions --------------------------------------------------------------------

    def cancel(self, campaign_id):
        self.call(CAMPAIGN, "action_cancel", [campaign_id])
        return self.campaign(campaign_id)

    def resume(self, campaign_id):
        """Carry on with the recipients not sent yet; the server never re-sends one marked sent."""
        self.call(CAMPAIGN, "action_resume", [campaign_id])
        return self.campaign(campaign_id)

    def retry_failed(self, campaign_id, temporary_only=True):
        """Send again to the failed recipients (only temporary failures, or all); return how many."""
        return self.call(CAMPAIGN, "action_retry_failed", [campaign_id], temporary_only=temporary_only)

    def send_test(self, campaign_id):
        """The test e-mail, rendered for a random recipient, to the campaign account's sender."""
        self.call(CAMPAIGN, "action_send_test", [campaign_id])
        return self.call(CAMPAIGN, "read", [campaign_id], ["email_from"])[0]["email_from"]


class _TimeoutTransport(xmlrpc.client.SafeTransport):
    """xmlrpc.client has no timeout of its own: a hung server would freeze the notebook."""

    def __init__(self, timeout, url):
        super().__init__()
        self.timeout = timeout
        self.https = url.startswith("https")

    def make_connection(self, host):
        if self.https:
            connection = super().make_connection(host)
        else:
            connection = xmlrpc.client.Transport.make_connection(self, host)
        connection.timeout = self.timeout
        return connection


# -- plain data ----------------------------------------------------------------------


@dataclass
class Campaign:
    id: int
    name: str
    state: str
    progress: int
    total: int
    sent: int
    failed: int
    pending: int
    cancelled: int
    started_by: str
    started_at: datetime
    scheduled_at: datetime
    finished_at: datetime
    changed_at: datetime
    last_sent_at: datetime

    @property
    def last_activity(self):
        """The later of the last mail sent and the last change of the campaign (start, resume, retry)."""
        moments = [moment for moment in (self.last_sent_at, self.started_at, self.changed_at) if moment]
        return max(moments) if moments else None


def _campaign_from_row(row, last_sent_at):
    return Campaign(
        id=row["id"],
        name=row["name"],
        state=row["state"],
        progress=row["progress"],
        total=row["total_count"],
        sent=row["sent_count"],
        failed=row["failed_count"],
        pending=row["pending_count"],
        cancelled=row["cancelled_count"],
        started_by=row["started_by_id"][1] if row["started_by_id"] else "",
        started_at=parse_datetime(row["started_at"]),
        scheduled_at=parse_datetime(row["scheduled_at"]),
        finished_at=parse_datetime(row["finished_at"]),
        changed_at=parse_datetime(row["write_date"]),
        last_sent_at=last_sent_at,
    )


# -- stall detection -----------------------------------------------------------------


@dataclass
class Stall:
    campaign_id: int
    idle: timedelta
    reason: str

    def describe(self):
        minutes = int(self.idle.total_seconds() // 60)
        return f"no mail sent for {minutes} min: {self.reason}"


def find_stall(campaign, now, stall_after, diagnostics, recent_errors):
    """A send in progress that has sent nothing for longer than ``stall_after``, with its likely reason.

    ``now`` is the server's clock (see :meth:`CampaignOps.diagnostics`), so a
    notebook on another machine with another clock judges the same way.
    """
    if not is_idle(campaign, now, stall_after):
        return None
    idle = now - campaign.last_activity
    return Stall(campaign.id, idle, likely_reason(diagnostics, recent_errors, now, stall_after))


def is_idle(campaign, now, stall_after):
    """Whether a send in progress has sent nothing for longer than ``stall_after``."""
    return (
        campaign.state == "sending"
        and campaign.last_activity is not None
        and now - campaign.last_activity > stall_after
    )


def likely_reason(diagnostics, recent_errors, now, stall_after):
    if not diagnostics["cron_active"]:
        return "the sending cron (Scheduled Actions: 'E-mail campaigns: send') is inactive"
    errors = list(recent_errors)
    if errors and all(error.startswith("connection") for error in errors):
        return f"the SMTP server cannot be reached ({errors[0]})"
    if errors and all(error[:1] == "4" for error in errors):
        return f"the SMTP server answers 'try later' to every mail ({errors[0]})"
    if errors and all(error[:1] == "5" for error in errors):
        return f"the SMTP server refuses every mail ({errors[0]})"
    lastcall = diagnostics["cron_lastcall"]
    if lastcall is None or now - lastcall > stall_after:
        since = f"since {lastcall:%Y-%m-%d %H:%M} UTC" if lastcall else "yet"
        return (
            f"the sending cron has not run {since}: no Odoo server with a cron worker is running for this "
            "database (server down, or started with --max-cron-threads=0)"
        )
    return "the reason cannot be told from here; look at the Odoo server's log"


# -- drill-down helpers --------------------------------------------------------------


def failures_csv(rows):
    """The failed recipients as CSV text (name, email, kind, tries, error, failed at)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "email", "kind", "tries", "error", "failed_at_utc"])
    for row in rows:
        failed_at = row["failed_at"].strftime(ODOO_DATETIME) if row["failed_at"] else ""
        writer.writerow([row["name"], row["email"], row["kind"], row["tries"], row["error"], failed_at])
    return buffer.getvalue()


def send_rate(times, bucket_seconds=10):
    """Mails per minute in consecutive buckets from the first to the last send, empty buckets included:
    a list of (bucket start, mails per minute)."""
    if not times:
        return []
    start = min(times)
    counts = {}
    for moment in times:
        bucket = int((moment - start).total_seconds() // bucket_seconds)
        counts[bucket] = counts.get(bucket, 0) + 1
    scale = 60 / bucket_seconds
    return [
        (start + timedelta(seconds=bucket * bucket_seconds), counts.get(bucket, 0) * scale)
        for bucket in range(max(counts) + 1)
    ]


def plot_send_rate(times, title="", bucket_seconds=None, axes=None):
    """A matplotlib figure of the send rate over time; a gap or a drop shows when it slowed or stopped."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 -- only the notebook's plot needs matplotlib

    if axes is None:
        figure, axes = plt.subplots(figsize=(9, 3))
    else:
        figure = axes.figure
    if not times:
        axes.text(0.5, 0.5, "nothing sent yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    if bucket_seconds is None:
        # about 40 buckets whatever the length of the send, none shorter than 5 s (noise)
        span = (max(times) - min(times)).total_seconds()
        bucket_seconds = max(5, int(span // 40))
    rates = send_rate(times, bucket_seconds)
    axes.step([moment for moment, _rate in rates], [rate for _moment, rate in rates], where="post")
    axes.set_ylim(bottom=0)
    axes.set_ylabel("mails / minute")
    axes.set_xlabel(f"UTC ({bucket_seconds} s buckets)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
