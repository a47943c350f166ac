from . import xrm_email_account
from . import xrm_link_type
from . import xrm_email_campaign_recipient
from . import xrm_email_campaign
from . import res_partner
from . import res_config_settings
