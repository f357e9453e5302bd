"""mmms-client: the MMMS API from Python (sync and asyncio, on httpx) and the ``mmms`` command.

    from mmms_client import MmmsClient, MmmsError

    with MmmsClient("http://127.0.0.1:8000", "ak_...", origin="http://localhost:4321") as mmms:
        mmms.send_mail({...})            # the answer's data, typed (mmms_client.models)
        for recipient in mmms.recipients("welcome-1"):
            print(recipient["status"])

Bodies and answers are the TypedDicts of ``mmms_client.models``, generated from the service's
OpenAPI document. Every failure raises ``MmmsError``.
"""

from mmms_client.async_client import AsyncMmmsClient
from mmms_client.client import MmmsClient
from mmms_client.errors import MmmsError

__all__ = ["AsyncMmmsClient", "MmmsClient", "MmmsError"]
