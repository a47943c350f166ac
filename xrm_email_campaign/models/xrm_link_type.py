from odoo import fields, models


class XrmLinkType(models.Model):
    """The kind of link between a campaign and a recipient, shown in the dossier.

    Every link starts 'Unspecified' and becomes 'E-mail campaign recipient'
    once the mail has been accepted by the SMTP server.
    """

    _name = "xrm.link.type"
    _description = "Campaign Link Type"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True)
    sequence = fields.Integer(default=10)

    _sql_constraints = [("code_unique", "unique(code)", "The code of a link type must be unique.")]
