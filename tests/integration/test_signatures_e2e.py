"""Two gateway processes' worth on one database behind a load balancer (one of them an api-only
process): a signature accepted by one is refused by the other; a CRM that signs its retry again
is answered; the message is delivered by the process that runs the links."""

from __future__ import annotations

import json

from gateway.roles import Role, build

from .conftest import Api, carrier_ports, case_received, gateway_settings


async def test_a_replay_to_another_runtime_on_the_same_database_is_refused(db_url, simulator):
    first = build(gateway_settings(db_url, carrier_ports(simulator)))
    second = build(gateway_settings(db_url, carrier_ports(simulator)), Role.API)
    await first.start()
    await second.start()
    to_first = Api(first.url)
    to_second = Api(second.url, signer=to_first.signer)  # one CRM, two gateway addresses
    try:
        event = case_received()
        body = json.dumps(event).encode()
        captured = to_first.headers("POST", f"{first.url}/api/v1/events", body)
        status, accepted = await to_first.post_event(event, headers=captured)
        assert status == 202, accepted
        status, problem = await to_second.post_event(event, headers=captured)
        assert status == 401 and problem["detail"].startswith("signature already used"), problem
        status, again = await to_second.post_event(event)  # signed afresh: the idempotent answer
        assert (status, again) == (202, accepted)
        (message_id,) = accepted["message_ids"]
        delivered = await to_second.wait_status(first, message_id, "delivered")
        assert delivered["id"] == message_id
    finally:
        await to_first.close()
        await to_second.close()
        await second.stop()
        await first.stop()
