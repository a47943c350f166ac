from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools.mail import email_normalize


class XrmEmailAccount(models.Model):
    """The sending identity shared by every user who sends a campaign with it.

    Its sender (``email_from``) receives the test e-mails and the results
    e-mail of every send.
    """

    _name = "xrm.email.account"
    _description = "E-mail Account for Campaigns"
    _order = "name"

    name = fields.Char(required=True)
    email_from = fields.Char(
        "Sender",
        required=True,
        help="Address the campaigns are sent from. It also receives the test e-mails and the results e-mails.",
    )
    mail_server_id = fields.Many2one(
        "ir.mail_server",
        "Outgoing Mail Server",
        help="Leave empty to use Odoo's default outgoing mail server.",
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("name_company_unique", "unique(name, company_id)", "An e-mail account with this name already exists."),
    ]

    @api.constrains("email_from")
    def _check_email_from(self):
        for account in self:
            if not email_normalize(account.email_from):
                raise ValidationError(
                    self.env._(
                        "The sender '%(sender)s' of account '%(account)s' is not a valid e-mail address.",
                        sender=account.email_from,
                        account=account.name,
                    )
                )
