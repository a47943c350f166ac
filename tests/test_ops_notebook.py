"""The ops notebook itself, executed headless (nbclient, a real IPython kernel) against a real
Odoo server with a send in progress: its widgets are driven as a person would click them, and
the test checks what changed on the server and in the SMTP server's log."""

import html
import json
import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .odoo_process import wait_for
from .scenario import create_campaign, create_user, deliveries, status
from .test_ops_server import add_troubled_recipients

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "campaign_ops.ipynb"


def test_the_committed_notebook_carries_no_outputs_nor_credentials():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "admin" not in NOTEBOOK.read_text()


def run_notebook(tmp_path, env, driver_cells):
    """Execute the notebook, then cells that click its widgets; return each driver cell's printed text."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first_driver = len(notebook.cells)
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in driver_cells]
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    with _environment(env):
        client.execute()
    printed = []
    for cell in notebook.cells[first_driver:]:
        errors = [output for output in cell.outputs if output.output_type == "error"]
        assert not errors, "\n".join(errors[0].traceback)
        text = "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
        printed.append(html.unescape(text))
    return notebook, printed


class _environment:
    """Set environment variables for the kernel the notebook runs in (it inherits ours)."""

    def __init__(self, values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_notebook_watches_cancels_resumes_and_shows_failures(odoo_server, smtp_sink, tmp_path):
    server = odoo_server()
    campaign = create_campaign(server, smtp_sink, 0, name="Notebook news")
    add_troubled_recipients(server, campaign)  # linked first, so they fail early in the send
    partners = server.rpc(
        "res.partner", "create", [{"name": f"Recipient {i}", "email": f"r{i}@example.org"} for i in range(300)]
    )
    server.rpc("xrm.email.campaign", "add_partners", [campaign], partners)
    create_user(server, "viewer", "group_campaign_viewer")
    create_user(server, "editor", "group_campaign_user")
    smtp_sink.handler.delay = 0.1  # a slow provider: 300 mails take 30 s, time enough to watch and cancel
    server.rpc("xrm.email.campaign", "action_send_now", [campaign], login="editor", password="editor")
    wait_for(lambda: status(server, campaign)["sent_count"] >= 5, timeout=60, message="5 sent")

    env = {
        "XRM_OPS_URL": f"http://127.0.0.1:{server.port}",
        "XRM_OPS_DB": server.dbname,
        "XRM_OPS_LOGIN": "editor",
        "XRM_OPS_PASSWORD": "editor",
        "PYTHONPATH": str(NOTEBOOKS),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    cid = campaign
    _notebook, printed = run_notebook(
        tmp_path,
        env,
        [
            # what the overview shows while the send runs
            f"row = rows_by_id[{cid}][1]\n"
            "print(connection_status.value)\n"
            "print('STATE', row['state'].value, 'BAR', row['bar'].value, 'COUNTS', row['counts'].value)",
            # cancel from the actions, as the editor
            f"campaign_picker.value = {cid}\ncancel_button.click()\nprint(action_status.value)\n"
            f"print('AFTER', campaigns_by_id[{cid}].state, campaigns_by_id[{cid}].sent)",
            # drill-down: failures, filter, export, link types, plot
            "failure_kind.value = 'permanent'\nshow_button.click()\nprint(failures_table.value)\n"
            "failure_kind.value = ''\nexport_button.click()\nprint(details_status.value)\n"
            "print(link_types.value)\nprint('PLOT', [sorted(o['data']) for o in rate_plot.outputs])",
            # resume, then watch the bar move by itself with auto-refresh
            "resume_button.click()\nprint(action_status.value)\n"
            "import time\nbefore = row['bar'].value\nauto_refresh.value = True\ntime.sleep(12)\n"
            "auto_refresh.value = False\nprint('AUTO', before, row['bar'].value)",
            # a viewer connects in the form: sees the campaign, but the server refuses their cancel
            "login.value = 'viewer'\nsecret.value = 'viewer'\nconnect_button.click()\nprint(connection_status.value)\n"
            f"campaign_picker.value = {cid}\ncancel_button.click()\nprint(action_status.value)",
        ],
    )
    overview, cancelled, drill_down, resumed, viewer = printed

    assert "Connected to" in overview and "as editor" in overview
    assert re.search(r"STATE .*sending.* BAR \d+ COUNTS .* sent · 3 failed", overview), overview

    assert "Cancel of 'Notebook news': now cancelled" in cancelled
    sent_at_cancel = int(cancelled.split("AFTER cancelled ")[1])
    assert 5 <= sent_at_cancel < 300

    assert "Failed recipients (2)" in drill_down and "reject.rita@example.org" in drill_down
    assert "tempfail.tim" not in drill_down.split("rows written")[0], "the kind filter applies"
    assert "3 rows written to" in drill_down
    exported = (tmp_path / f"failed-recipients-{cid}.csv").read_text()
    assert exported.count("\n") == 4 and "550 5.1.1" in exported and "tempfail.tim@example.org" in exported
    assert "E-mail campaign recipient: <b>" in drill_down and "Unspecified: <b>" in drill_down
    assert "PLOT [['image/png', 'text/plain']]" in drill_down

    assert "Resume of 'Notebook news': now sending" in resumed
    before, after = map(int, resumed.split("AUTO ")[1].split())
    assert after > before, "auto-refresh moved the progress bar by itself"

    assert "as viewer" in viewer
    assert "Cancel of 'Notebook news' refused: You need Edit rights" in viewer
    assert status(server, campaign)["state"] in ("sending", "done"), "the viewer's cancel changed nothing"

    final = wait_for(
        lambda: status(server, campaign)["state"] == "done" and status(server, campaign), timeout=120, message="done"
    )
    assert (final["sent_count"], final["failed_count"]) == (300, 3)
    _by_address, lost, duplicates = deliveries(smtp_sink, 300)
    assert (lost, duplicates) == (set(), 0), "cancel then resume: nobody lost, nobody twice"
    assert json.loads(NOTEBOOK.read_text())["cells"][1]["outputs"] == [], "the repository's notebook is untouched"
