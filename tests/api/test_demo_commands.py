"""The commands `smsgw demo` prints are pasted into a shell as they are: bash, curl and openssl
sign them with v2 and the gateway accepts them."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from gateway.cli.demo import get_command, post_command
from tests.api_gateway import api_settings, running

TOOLS = ("bash", "curl", "openssl")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS), reason="needs bash, curl and openssl on PATH"
)


async def _shell(command: str) -> dict:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_the_printed_post_and_get_work_when_pasted(db_url):
    async with running(api_settings(db_url)) as (gateway, _):
        base = gateway.url
        accepted = await _shell(post_command(base, "demo", "demo-secret"))
        assert accepted["recipients"] == 1, accepted
        (message_id,) = accepted["message_ids"]
        message = await _shell(get_command(base, "demo", "demo-secret", str(message_id)))
        assert message["id"] == message_id and message["status"] == "queued", message
        refused = await _shell(get_command(base, "demo", "not-the-secret", str(message_id)))
        assert refused["status"] == 401 and refused["detail"] == "signature does not match"
