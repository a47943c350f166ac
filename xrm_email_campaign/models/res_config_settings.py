from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    xrm_campaign_batch_size = fields.Integer(
        "Recipients per batch",
        config_parameter="xrm_email_campaign.batch_size",
        default=50,
        help="Recipients claimed and sent over one SMTP session. A crash re-sends at most one of them.",
    )
    xrm_campaign_run_seconds = fields.Float(
        "Seconds per cron run",
        config_parameter="xrm_email_campaign.run_seconds",
        default=4,
        help="How long one run of the sending cron sends before it reports progress. Odoo runs it up to "
        "10 times in a row, so keep 10 x this well under limit_time_cpu (60 s by default).",
    )
    xrm_campaign_lease_seconds = fields.Integer(
        "Claim lease (seconds)",
        config_parameter="xrm_email_campaign.lease_seconds",
        default=300,
        help="A batch claimed by a worker that is still connected but stopped making progress is taken over "
        "after this time. A worker whose server died is taken over at once.",
    )
