"""The benchmark behind `make bench`: this addon against Odoo's own mass_mailing and against
the raw-SMTP limit, in one run on one machine, plus memory, bulk linking, the Status form,
two servers sharing one campaign, an account's rate limit over two servers and a kill -9
in the middle of a send.

    python3 -m bench.run --n 1000 10000 100000 [--mass-mailing-max 10000] [--shared-n 20000]
                         [--rate-limit-n 1000 --rate-limit 600] [--kill9-n 10000]

Every send goes to one aiosmtpd sink on 127.0.0.1 (bench/sink.py, its own process) and is
timed from launch to the last message the sink accepted. Prints a table; writes the same
figures as JSON to var/bench/ (latest.json and one file per run) to compare runs.
"""

import argparse
import email.policy
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import psutil

from scripts.devdb import copy_database, database_exists, drop_database, odoo_addons_path, pg_connect
from tests.odoo_process import OdooServer, db_args, free_port, wait_for

from .sender import SENDER, body_html, mean_message_bytes, text_of
from .sink import count_lines, read_log

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "xrm_bench_template"
RUN_DB = "xrm_bench_run"


def log(message):
    print(message, file=sys.stderr, flush=True)  # pylint: disable=print-used


# -- databases, sink -------------------------------------------------------------------


def ensure_template():
    """A database with this addon and mass_mailing installed, updated to the current code."""
    mode = ["-u", "xrm_email_campaign"] if database_exists(TEMPLATE) else ["-i", "xrm_email_campaign,mass_mailing"]
    log(f"{'Updating' if mode[0] == '-u' else 'Creating'} {TEMPLATE}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            "-d",
            TEMPLATE,
            *mode,
            "--stop-after-init",
            "--without-demo=all",
            "--addons-path",
            odoo_addons_path(),
            "--log-level=warn",
            *db_args(),
        ],
        check=True,
    )


@contextmanager
def fresh_database(partners):
    drop_database(RUN_DB)
    copy_database(TEMPLATE, RUN_DB)
    connection = pg_connect(RUN_DB)
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO res_partner (name, complete_name, email, active, type, is_company, lang,
                                        create_date, write_date, create_uid, write_uid)
               SELECT 'Bench Contact ' || i, 'Bench Contact ' || i, 'bench' || i || '@example.org', true,
                      'contact', false, 'en_US', now(), now(), 1, 1
                 FROM generate_series(1, %s) AS i""",
            [partners],
        )
        cursor.execute("VACUUM ANALYZE res_partner")
    connection.close()
    try:
        yield RUN_DB
    finally:
        drop_database(RUN_DB)


def row_writes(dbname):
    """Rows inserted, updated and deleted in the database so far (PostgreSQL's statistics)."""
    connection = pg_connect(dbname)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables")
        value = int(cursor.fetchone()[0])
    connection.close()
    return value


class Sink:
    """bench/sink.py in its own process, with its log in a temporary folder."""

    def __init__(self):
        self.port = free_port()
        self.log_path = Path(tempfile.mkdtemp(prefix="xrm-bench-")) / "sink.log"
        self.log_path.touch()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", "--port", str(self.port), "--log", str(self.log_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def count(self):
        return count_lines(self.log_path)

    def rows(self):
        return read_log(self.log_path)

    def cpu_seconds(self):
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def losses_and_duplicates(rows, n):
    seen = {}
    for row in rows:
        if row.rcpt.startswith("bench") and row.rcpt != SENDER:  # not the results mail
            seen[row.rcpt] = seen.get(row.rcpt, 0) + 1
    lost = n - len(seen)
    return lost, sum(count - 1 for count in seen.values())


def postgres_cpu_seconds():
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] and process.info["name"].startswith("postgres") and process.info["cpu_times"]:
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return total


# -- scenarios -------------------------------------------------------------------------


def in_process_send(mode, n):
    """This addon or mass_mailing sending to n partners, in a sender process of its own."""
    with fresh_database(n) as dbname:
        sink = Sink()
        try:
            # Linking is counted with the send: mass_mailing writes its traces while it sends.
            writes_before = row_writes(dbname)
            prepared = _sender("prepare-ours", dbname, n, sink) if mode == "ours" else {}
            log(f"{mode}: sending {n:,} mails")
            result = _sender(mode, dbname, n, sink)
            time.sleep(0.5)  # the sender's backend has exited; its statistics are flushed
            result["row_writes_per_recipient"] = round((row_writes(dbname) - writes_before) / n, 2)
            result["lost"], result["duplicates"] = losses_and_duplicates(sink.rows(), n)
            result.update(prepared)
            log(f"{mode}: {result['mails_per_s']} mails/s, peak RSS {result['peak_rss_mb']} MB")
            return result
        finally:
            sink.stop()


def _sender(mode, dbname, n, sink):
    """Run bench/sender.py in ``mode``; return the JSON object it printed last."""
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sender",
            mode,
            "--db",
            dbname,
            "--n",
            str(n),
            "--sink-port",
            str(sink.port),
            "--sink-log",
            str(sink.log_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def raw_smtp(n):
    """The physical limit of the path: smtplib sending n pre-built messages over one connection."""
    sink = Sink()
    try:
        messages = []
        for index in range(n):
            message = EmailMessage()
            message["From"] = SENDER
            message["To"] = f"bench{index}@example.org"
            message["Subject"] = "Spring news"
            message["Message-Id"] = f"<raw-{index}@example.com>"
            # The same shape as a campaign mail: a text and an HTML alternative, so the
            # sink reads as many bytes per mail as it does for the senders it is compared with.
            html = body_html(f"Bench Contact {index}")
            message.set_content(text_of(html))
            message.add_alternative(html, subtype="html")
            messages.append((f"bench{index}@example.org", message.as_bytes(policy=email.policy.SMTP)))
        started = time.time()
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for rcpt, data in messages:
                smtp.sendmail(SENDER, [rcpt], data)
        wait_for(lambda: sink.count() >= n, timeout=60)
        rows = sink.rows()
        seconds = max(row.at for row in rows) - started
        return {
            "n": n,
            "seconds": round(seconds, 2),
            "mails_per_s": round(n / seconds, 1),
            "message_bytes": mean_message_bytes(rows),
        }
    finally:
        sink.stop()


def start_campaign_over_rpc(server, sink_port, n):
    mail_server = server.rpc(
        "ir.mail_server",
        "create",
        {"name": "Bench sink", "smtp_host": "127.0.0.1", "smtp_port": sink_port, "smtp_encryption": "none"},
    )
    account = server.rpc(
        "xrm.email.account",
        "create",
        {"name": "Bench", "email_from": SENDER, "mail_server_id": mail_server},
    )
    campaign = server.rpc(
        "xrm.email.campaign",
        "create",
        {
            "name": "Bench",
            "account_id": account,
            "subject": "Spring news for {{ recipient.first_name }}",
            "body_html": body_html("{{ recipient.name }}"),
        },
    )
    partners = server.rpc("res.partner", "search", [("email", "like", "bench%@example.org")])
    server.rpc("xrm.email.campaign", "add_partners", [campaign], partners)
    return campaign


def shared_send(n, servers_count, tmp):
    """``servers_count`` Odoo servers (one cron worker each) on one database sending one campaign."""
    with fresh_database(n) as dbname:
        sink = Sink()
        servers = [OdooServer(dbname, tmp).start() for _index in range(servers_count)]
        try:
            campaign = start_campaign_over_rpc(servers[0], sink.port, n)
            cpu_before = [server_cpu(server) for server in servers]
            pg_before, sink_before = postgres_cpu_seconds(), sink.cpu_seconds()
            log(f"{servers_count} server(s): sending {n:,} mails")
            launched = time.time()
            servers[0].rpc("xrm.email.campaign", "action_send_now", [campaign])
            wait_for(lambda: sink.count() >= n, timeout=3600, interval=0.2)
            rows = sink.rows()
            seconds = max(row.at for row in rows) - launched
            lost, duplicates = losses_and_duplicates(rows, n)
            time.sleep(1)
            shares = [server.mails_processed() for server in servers]
            return {
                "servers": servers_count,
                "n": n,
                "seconds": round(seconds, 2),
                "mails_per_s": round(n / seconds, 1),
                "lost": lost,
                "duplicates": duplicates,
                "mails_per_server": shares,
                "cpu_s_per_server": [round(server_cpu(s) - b, 1) for s, b in zip(servers, cpu_before, strict=True)],
                "cpu_s_postgres": round(postgres_cpu_seconds() - pg_before, 1),
                "cpu_s_sink": round(sink.cpu_seconds() - sink_before, 1),
            }
        finally:
            for server in servers:
                server.stop()
            sink.stop()


def rate_limited_send(n, per_minute, tmp):
    """Two servers sending one campaign for an account limited to ``per_minute``."""
    with fresh_database(n) as dbname:
        sink = Sink()
        servers = [OdooServer(dbname, tmp).start() for _index in range(2)]
        try:
            campaign = start_campaign_over_rpc(servers[0], sink.port, n)
            account = servers[0].rpc("xrm.email.campaign", "read", [campaign], ["account_id"])[0]["account_id"][0]
            servers[0].rpc("xrm.email.account", "write", [account], {"rate_limit_per_minute": per_minute})
            log(f"rate limit: sending {n:,} mails at {per_minute:,}/min from 2 servers")
            servers[0].rpc("xrm.email.campaign", "action_send_now", [campaign])
            wait_for(lambda: sink.count() >= n, timeout=3600, interval=0.5)
            times = sorted(row.at for row in sink.rows() if row.rcpt.startswith("bench") and row.rcpt != SENDER)
            lost, duplicates = losses_and_duplicates(sink.rows(), n)
            return {
                "n": n,
                "limit_per_minute": per_minute,
                "achieved_per_minute": round((len(times) - 1) / (times[-1] - times[0]) * 60, 1),
                "max_in_any_60_s": max_in_window(times, 60.0),
                "min_gap_s": round(min(b - a for a, b in zip(times, times[1:], strict=False)), 4),
                "slot_s": round(60 / per_minute, 4),
                "mails_per_server": [server.mails_processed() for server in servers],
                "lost": lost,
                "duplicates": duplicates,
            }
        finally:
            for server in servers:
                server.stop()
            sink.stop()


def max_in_window(times, seconds):
    """The most of the sorted ``times`` that fall in any half-open window of ``seconds``."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def server_cpu(server):
    process = psutil.Process(server.process.pid)
    times = [process.cpu_times(), *(child.cpu_times() for child in process.children(recursive=True))]
    return sum(t.user + t.system for t in times)


def kill9_send(n, tmp):
    """kill -9 the server a third of the way through, restart it, count losses and duplicates."""
    with fresh_database(n) as dbname:
        sink = Sink()
        server = OdooServer(dbname, tmp).start()
        try:
            campaign = start_campaign_over_rpc(server, sink.port, n)
            log(f"kill -9: sending {n:,} mails, killing the server after {n // 3:,}")
            server.rpc("xrm.email.campaign", "action_send_now", [campaign])
            wait_for(lambda: sink.count() >= n // 3, timeout=600, interval=0.02)
            server.kill()
            at_kill = sink.count()
            restarted = time.time()
            server.start()
            wait_for(lambda: sink.count() >= n, timeout=1800, interval=0.2)
            time.sleep(2)  # anything sent twice would arrive now
            rows = sink.rows()
            resumed_after = min(row.at for row in rows[at_kill:]) - restarted
            lost, duplicates = losses_and_duplicates(rows, n)
            return {
                "n": n,
                "killed_after": at_kill,
                "resumed_after_restart_s": round(resumed_after, 1),
                "lost": lost,
                "duplicates": duplicates,
            }
        finally:
            server.stop()
            sink.stop()


# -- report ----------------------------------------------------------------------------


def table(results):
    lines = [
        "",
        "| N | ours mails/s | mass_mailing mails/s | raw SMTP mails/s | ours / mass_mailing | "
        "ours / raw SMTP | peak RSS ours / mm (MB) | queries per recipient ours / mm | "
        "row writes per recipient ours / mm | mail bytes ours / mm / raw | add_partners (s) | "
        "Status form read (ms) |",
        "|" + " --- |" * 12,
    ]
    for n, row in sorted(results["by_n"].items(), key=lambda item: int(item[0])):
        ours, mm, raw = row["ours"], row.get("mass_mailing"), row["raw_smtp"]
        lines.append(
            f"| {int(n):,} | {ours['mails_per_s']} | {mm['mails_per_s'] if mm else '—'} | {raw['mails_per_s']} | "
            f"{_ratio(ours, mm)} | {_share(ours, raw)} | {ours['peak_rss_mb']} / {mm['peak_rss_mb'] if mm else '—'} | "
            f"{ours['queries_per_recipient']} / {mm['queries_per_recipient'] if mm else '—'} | "
            f"{ours['row_writes_per_recipient']} / {mm['row_writes_per_recipient'] if mm else '—'} | "
            f"{ours['message_bytes']:,} / {format(mm['message_bytes'], ',') if mm else '—'} / "
            f"{raw['message_bytes']:,} | "
            f"{ours['add_partners_s']:.2f} | {ours['status_form_read_ms']:.1f} |"
        )
    ns = sorted(int(n) for n in results["by_n"])
    if len(ns) > 1:
        low, high = results["by_n"][str(ns[0])]["ours"], results["by_n"][str(ns[-1])]["ours"]
        lines.append(
            f"\nPeak RSS growth of the sending worker from N={ns[0]:,} to N={ns[-1]:,}: "
            f"{high['peak_rss_mb'] - low['peak_rss_mb']:+.1f} MB"
        )
    for shared in results.get("shared", []):
        lines.append(
            f"\n{shared['servers']} server(s), one {shared['n']:,}-recipient campaign: "
            f"{shared['mails_per_s']} mails/s, "
            f"mails per server {shared['mails_per_server']}, lost {shared['lost']}, duplicates {shared['duplicates']}; "
            f"CPU s per server {shared['cpu_s_per_server']}, PostgreSQL {shared['cpu_s_postgres']}, "
            f"sink {shared['cpu_s_sink']}"
        )
    if results.get("rate_limit"):
        rate = results["rate_limit"]
        lines.append(
            f"\nRate limit {rate['limit_per_minute']:,}/min, 2 servers, {rate['n']:,} mails: "
            f"at most {rate['max_in_any_60_s']:,} in any 60 s, {rate['achieved_per_minute']:,}/min achieved, "
            f"closest two mails {rate['min_gap_s']} s apart (slot {rate['slot_s']} s), "
            f"mails per server {rate['mails_per_server']}, lost {rate['lost']}, duplicates {rate['duplicates']}"
        )
    if results.get("kill9"):
        kill = results["kill9"]
        lines.append(
            f"\nkill -9 after {kill['killed_after']:,} of {kill['n']:,}: resumed {kill['resumed_after_restart_s']} s "
            f"after the restart, lost {kill['lost']}, duplicates {kill['duplicates']}"
        )
    return "\n".join(lines)


def _ratio(ours, other):
    return f"{ours['mails_per_s'] / other['mails_per_s']:.1f}×" if other and other["mails_per_s"] else "—"


def _share(ours, other):
    return f"{100 * ours['mails_per_s'] / other['mails_per_s']:.0f} %" if other and other["mails_per_s"] else "—"


def target_checks(results):
    """The product's speed and scale targets, each as (target, measured, met), for those this run measured."""
    checks = []
    row = results["by_n"].get("10000")
    if row and row.get("mass_mailing"):
        ratio = row["ours"]["mails_per_s"] / row["mass_mailing"]["mails_per_s"]
        checks.append(("1. N=10,000: ≥ 10 × mass_mailing", f"{ratio:.1f} ×", ratio >= 10))
    if row:
        share = row["ours"]["mails_per_s"] / row["raw_smtp"]["mails_per_s"]
        checks.append(("1. N=10,000: ≥ 50 % of raw SMTP", f"{100 * share:.0f} %", share >= 0.5))
    if "1000" in results["by_n"] and "100000" in results["by_n"]:
        growth = results["by_n"]["100000"]["ours"]["peak_rss_mb"] - results["by_n"]["1000"]["ours"]["peak_rss_mb"]
        checks.append(("2. peak RSS growth N=1,000 → 100,000 < 30 MB", f"{growth:+.1f} MB", growth < 30))
    if "100000" in results["by_n"]:
        ours = results["by_n"]["100000"]["ours"]
        seconds = ours["add_partners_s"]
        checks.append(("3. add_partners(100,000) < 10 s", f"{seconds:.2f} s", seconds < 10))
        checks.append(
            (
                "3. Status form read at 100,000 < 50 ms",
                f"{ours['status_form_read_ms']:.1f} ms",
                ours["status_form_read_ms"] < 50,
            )
        )
    shared = {run["servers"]: run for run in results.get("shared", [])}
    if 1 in shared and 2 in shared:
        two = shared[2]
        fair = min(two["mails_per_server"]) >= two["n"] / 3
        checks.append(
            (
                "4. two servers: 0 lost, 0 duplicates, each ≥ 1/3, combined ≥ one server",
                f"lost {two['lost']}, duplicates {two['duplicates']}, {two['mails_per_server']}, "
                f"{two['mails_per_s']} vs {shared[1]['mails_per_s']} mails/s",
                two["lost"] == 0 and two["duplicates"] == 0 and fair and two["mails_per_s"] >= shared[1]["mails_per_s"],
            )
        )
    if results.get("rate_limit"):
        rate = results["rate_limit"]
        checks.append(
            (
                f"5. rate limit {rate['limit_per_minute']:,}/min never exceeded over 2 servers",
                f"at most {rate['max_in_any_60_s']:,} in any 60 s",
                rate["max_in_any_60_s"] <= rate["limit_per_minute"] and not rate["lost"] and not rate["duplicates"],
            )
        )
    if results.get("kill9"):
        kill = results["kill9"]
        checks.append(
            (
                "kill -9: no loss, at most one duplicate",
                f"lost {kill['lost']}, duplicates {kill['duplicates']}",
                kill["lost"] == 0 and kill["duplicates"] <= 1,
            )
        )
    return checks


def targets_table(checks):
    lines = ["", "| target | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {target} | {measured} | {'yes' if met else '**no**'} |" for target, measured, met in checks]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--mass-mailing-max",
        type=int,
        default=10000,
        help="largest N sent with mass_mailing too (it takes ~4.5 min per 10,000)",
    )
    parser.add_argument("--shared-n", type=int, default=20000, help="recipients of the two-servers run (0: skip)")
    parser.add_argument("--kill9-n", type=int, default=10000, help="recipients of the kill -9 run (0: skip)")
    parser.add_argument("--rate-limit-n", type=int, default=1000, help="recipients of the rate-limited run (0: skip)")
    parser.add_argument("--rate-limit", type=int, default=600, help="the account's limit in that run, per minute")
    args = parser.parse_args()

    ensure_template()
    results = {"started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu_count": os.cpu_count(), "by_n": {}}
    with tempfile.TemporaryDirectory(prefix="xrm-bench-") as tmp:
        for n in args.n:
            row = {"ours": in_process_send("ours", n), "raw_smtp": raw_smtp(n)}
            if n <= args.mass_mailing_max:
                row["mass_mailing"] = in_process_send("mass_mailing", n)
            results["by_n"][str(n)] = row
        if args.shared_n:
            results["shared"] = [shared_send(args.shared_n, count, tmp) for count in (1, 2)]
        if args.rate_limit_n:
            results["rate_limit"] = rate_limited_send(args.rate_limit_n, args.rate_limit, tmp)
        if args.kill9_n:
            results["kill9"] = kill9_send(args.kill9_n, tmp)
    results["targets"] = [
        {"target": target, "measured": measured, "met": met} for target, measured, met in target_checks(results)
    ]
    report = table(results) + "\n" + targets_table(target_checks(results))
    print(report)  # pylint: disable=print-used
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (out / "latest.json").write_text(text)
    (out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    log(f"JSON: {out / 'latest.json'}")


if __name__ == "__main__":
    main()
