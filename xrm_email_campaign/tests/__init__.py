from . import test_campaign_links
from . import test_campaign_schedule
from . import test_campaign_security
from . import test_campaign_sending
from . import test_claims
from . import test_tools_delivery
from . import test_tools_rendering
from . import test_tools_report
