from . import xrm_campaign_add_recipients
from . import xrm_campaign_schedule
