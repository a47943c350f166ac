from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools.safe_eval import safe_eval


class XrmCampaignAddRecipients(models.TransientModel):
    """Link contacts to a campaign: the ones picked, or all matching a filter.

    Opened from the campaign (button 'Add recipients') and from the Contacts
    list (action 'Add to e-mail campaign', with the selected contacts).
    """

    _name = "xrm.campaign.add.recipients"
    _description = "Add Recipients to an E-mail Campaign"

    campaign_id = fields.Many2one(
        "xrm.email.campaign",
        required=True,
        domain="[('state', 'in', ('draft', 'scheduled', 'cancelled'))]",
    )
    selection_mode = fields.Selection(
        [("partners", "The contacts picked here"), ("filter", "All contacts matching a filter")],
        string="Add",
        default="partners",
        required=True,
    )
    partner_ids = fields.Many2many("res.partner", string="Contacts")
    partner_domain = fields.Char("Filter", default="[('email', '!=', False)]")
    matching_count = fields.Integer("Matching contacts", compute="_compute_matching_count")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if self.env.context.get("active_model") == "res.partner" and self.env.context.get("active_ids"):
            values["partner_ids"] = [fields.Command.set(self.env.context["active_ids"])]
        return values

    @api.depends("selection_mode", "partner_ids", "partner_domain")
    def _compute_matching_count(self):
        for wizard in self:
            if wizard.selection_mode == "filter":
                wizard.matching_count = self.env["res.partner"].search_count(wizard._parsed_domain())
            else:
                wizard.matching_count = len(wizard.partner_ids)

    def _parsed_domain(self):
        try:
            return safe_eval(self.partner_domain or "[]")
        except Exception as error:
            raise UserError(self.env._("The filter is not a valid domain: %s", error)) from error

    def action_add(self):
        self.ensure_one()
        if self.selection_mode == "filter":
            partner_ids = self.env["res.partner"].search(self._parsed_domain()).ids
        else:
            partner_ids = self.partner_ids.ids
        added = self.campaign_id.add_partners(partner_ids)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._(
                    "%(added)s recipients added to '%(campaign)s' (%(skipped)s already linked).",
                    added=added,
                    campaign=self.campaign_id.name,
                    skipped=len(partner_ids) - added,
                ),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
