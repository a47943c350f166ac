from odoo import fields, models


class XrmCampaignSchedule(models.TransientModel):
    """The window that sets or changes the time of a delayed send."""

    _name = "xrm.campaign.schedule"
    _description = "Schedule an E-mail Campaign"

    campaign_id = fields.Many2one("xrm.email.campaign", required=True)
    scheduled_at = fields.Datetime("Send at", required=True)

    def action_schedule(self):
        self.ensure_one()
        self.campaign_id.scheduled_at = self.scheduled_at
        self.campaign_id.action_schedule()
        return {"type": "ir.actions.act_window_close"}
