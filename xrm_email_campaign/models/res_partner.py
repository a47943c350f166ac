from odoo import fields, models


class ResPartner(models.Model):
    """The partner's dossier shows which campaigns reached it and which did not."""

    _inherit = "res.partner"

    xrm_campaign_recipient_ids = fields.One2many(
        "xrm.email.campaign.recipient",
        "partner_id",
        "E-mail Campaigns",
        groups="xrm_email_campaign.group_campaign_viewer",
    )
    xrm_campaign_count = fields.Integer(
        "Campaigns",
        compute="_compute_xrm_campaign_count",
        groups="xrm_email_campaign.group_campaign_viewer",
    )

    def _compute_xrm_campaign_count(self):
        counts = dict(
            self.env["xrm.email.campaign.recipient"]._read_group(
                [("partner_id", "in", self.ids)],
                ["partner_id"],
                ["__count"],
            )
        )
        for partner in self:
            partner.xrm_campaign_count = counts.get(partner, 0)

    def action_view_xrm_campaign_links(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("E-mail campaigns of %s", self.display_name),
            "res_model": "xrm.email.campaign.recipient",
            "view_mode": "list,form",
            "domain": [("partner_id", "=", self.id)],
            "context": {"default_partner_id": self.id},
        }
