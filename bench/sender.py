"""One measured send, in a process of its own so its peak RSS is the sending worker's:

    python3 -m bench.sender prepare-ours|ours|mass_mailing --db DB --n N --sink-port P --sink-log FILE

``prepare-ours`` writes this addon's campaign and links the N partners bench/run.py
created (timing ``add_partners`` and the Status form's read), as a user would in the
web UI. ``ours`` and ``mass_mailing`` load Odoo's registry, launch the send, then
call the same methods the product's crons call, until the sink has accepted all N
mails. Each prints one JSON object with its figures.
"""

import argparse
import json
import os
import re
import time

from bench.sink import count_lines, read_log

SENDER = "bench-sender@example.com"  # the account's sender: it gets the results mail
PARAGRAPH = (
    '<p style="font-family:Arial,sans-serif;font-size:14px;line-height:20px;color:#333333">'
    "Our spring collection is here: new colours, lighter fabrics and the classics you asked for. "
    "Members get early access, free returns within 60 days and a 10 % voucher on their next order. "
    '<a href="https://shop.example.com/spring?utm_source=newsletter">See what is new</a>.</p>\n'
)


def body_html(placeholder):
    """About 7 kB of HTML with one per-recipient placeholder, as the issue asks."""
    paragraphs = PARAGRAPH * 17
    return f"<div><p>Dear {placeholder},</p>\n{paragraphs}<p>Kind regards,<br/>The shop team</p></div>"


def text_of(html):
    """A plain-text alternative of the bench body, as a sender would add one."""
    return re.sub(r"<[^>]+>", "", html)


def mean_message_bytes(log):
    """The mean size of the mails the recipients got (not the results mail)."""
    sizes = [row.size for row in log if row.rcpt.startswith("bench") and row.rcpt != SENDER]
    return round(sum(sizes) / len(sizes)) if sizes else 0


def _status_mb(key):
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb():
    """The process's peak resident memory so far (the kernel's high-water mark)."""
    return _status_mb("VmHWM:")


def rss_mb():
    return _status_mb("VmRSS:")


def wait_for_sink(path, expected, timeout, step=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if count_lines(path) >= expected:
            return True
        if step is None:
            time.sleep(0.05)
    return False


def bench_partner_ids(env):
    env.cr.execute("SELECT id FROM res_partner WHERE email LIKE 'bench%%@example.org' ORDER BY id")
    return [row[0] for row in env.cr.fetchall()]


def mail_server(env, port):
    return env["ir.mail_server"].create(
        {"name": "Bench sink", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_encryption": "none", "sequence": 1}
    )


def status_form_read_ms(campaign, repeat=7):
    """Server time of the Status form's read (web_read with the form view's field spec), median of runs."""
    view = campaign.env.ref("xrm_email_campaign.xrm_email_campaign_view_form_status")
    spec = {name: {} for name in campaign.get_views([(view.id, "form")])["models"]["xrm.email.campaign"]["fields"]}
    for name, definition in campaign.fields_get(list(spec)).items():
        if definition["type"] in ("many2one",):
            spec[name] = {"fields": {"display_name": {}}}
        elif definition["type"] in ("one2many", "many2many"):
            spec[name] = {"fields": {"display_name": {}}, "limit": 80}
    timings = []
    for _run in range(repeat):
        campaign.env.invalidate_all()
        started = time.perf_counter()
        campaign.web_read(spec)
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)[len(timings) // 2]


def prepare_ours(env, partner_ids, args):
    """The campaign a user would write and fill: timed ``add_partners`` and Status form read."""
    server = mail_server(env, args.sink_port)
    account = env["xrm.email.account"].create({"name": "Bench", "email_from": SENDER, "mail_server_id": server.id})
    campaign = env["xrm.email.campaign"].create(
        {
            "name": "Bench",
            "account_id": account.id,
            "subject": "Spring news for {{ recipient.first_name }}",
            "body_html": body_html("{{ recipient.name }}"),
        }
    )
    env.cr.commit()
    started = time.perf_counter()
    campaign.add_partners(partner_ids)
    env.cr.commit()
    add_partners_s = time.perf_counter() - started
    form_read_ms = status_form_read_ms(campaign)
    env.cr.commit()
    return {"campaign_id": campaign.id, "add_partners_s": add_partners_s, "status_form_read_ms": form_read_ms}


def run_ours(env, args):
    """A user presses "Send now", then this process is the cron worker: it runs the
    cron's method, as ir.cron does, until the sink has every mail."""
    campaign = env["xrm.email.campaign"].search([("name", "=", "Bench")], limit=1)
    Campaign = env["xrm.email.campaign"]
    launched = time.time()
    campaign.action_send_now()
    env.cr.commit()
    finished = wait_for_sink(args.sink_log, args.n, args.timeout, step=Campaign._cron_send_campaigns)
    return launched, finished


def run_mass_mailing(env, args):
    server = mail_server(env, args.sink_port)
    mailing = env["mailing.mailing"].create(
        {
            "subject": "Spring news for you",
            "email_from": SENDER,
            "mailing_model_id": env["ir.model"]._get_id("res.partner"),
            "mailing_domain": repr([("email", "like", "bench%@example.org")]),
            "body_html": body_html('<t t-out="object.name"/>'),
            "body_arch": body_html('<t t-out="object.name"/>'),
            "mail_server_id": server.id,
        }
    )
    env.cr.commit()
    Mail = env["mail.mail"]
    launched = time.time()
    mailing.action_launch()
    env.cr.commit()

    def step():
        env["mailing.mailing"]._process_mass_mailing_queue()
        Mail.process_email_queue()
        env.cr.commit()

    finished = wait_for_sink(args.sink_log, args.n, args.timeout, step=step)
    return launched, finished


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["prepare-ours", "ours", "mass_mailing"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--sink-port", type=int, required=True)
    parser.add_argument("--sink-log", required=True)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    import odoo  # noqa: PLC0415 -- after argument parsing: a wrong call fails fast
    from odoo import sql_db  # noqa: PLC0415

    from scripts.devdb import odoo_addons_path  # noqa: PLC0415

    odoo.tools.config.parse_config(
        [
            "--addons-path",
            odoo_addons_path(),
            "--log-level",
            "warn",
            *(["--db_host", os.environ["PGHOST"]] if os.environ.get("PGHOST") else []),
            *(["--db_user", os.environ["PGUSER"]] if os.environ.get("PGUSER") else []),
            *(["--db_port", os.environ["PGPORT"]] if os.environ.get("PGPORT") else []),
        ]
    )
    registry = odoo.modules.registry.Registry(args.db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        if args.mode == "prepare-ours":
            print(json.dumps(prepare_ours(env, bench_partner_ids(env), args)))  # pylint: disable=print-used
            return
        rss_ready = rss_mb()
        queries_before = sql_db.sql_counter
        run = run_ours if args.mode == "ours" else run_mass_mailing
        launched, finished = run(env, args)
        queries = sql_db.sql_counter - queries_before
        peak = peak_rss_mb()  # before this harness reads the sink's log
    log = read_log(args.sink_log)
    last = max(row.at for row in log) if log else launched
    seconds = last - launched
    print(  # pylint: disable=print-used
        json.dumps(
            {
                "mode": args.mode,
                "n": args.n,
                "complete": finished,
                "accepted": len(log),
                "message_bytes": mean_message_bytes(log),
                "seconds": round(seconds, 2),
                "mails_per_s": round(len(log) / seconds, 1) if seconds > 0 else None,
                "peak_rss_mb": round(peak, 1),
                "rss_before_send_mb": round(rss_ready, 1),
                "queries_per_recipient": round(queries / args.n, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
