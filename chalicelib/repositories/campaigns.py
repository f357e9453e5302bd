"""SQL for campaigns (SPEC 13), one repository made of the statements' three parts:

- ``campaign_table``: the campaign row's shape and the processing lease;
- ``campaign_lifecycle``: create, the status read (one statement), paging, status moves,
  the tick's due list, cancel;
- ``campaign_staging``: validation's ``COPY`` of valid rows with the checkpoint, and its verdict;
- ``campaign_fan_out``: staged rows recorded as recipients with the checkpoint, and the
  consumer's read of a chunk.

Processing takes the whole repository: each of its steps runs under the one lease.
"""

from __future__ import annotations

from chalicelib.repositories.campaign_fan_out import CampaignFanOut
from chalicelib.repositories.campaign_lifecycle import CampaignLifecycle
from chalicelib.repositories.campaign_staging import CampaignStaging


class CampaignRepository(CampaignLifecycle, CampaignStaging, CampaignFanOut):
    """Every campaign statement over one database (and one lease length)."""
