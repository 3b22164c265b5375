"""What `smsgw demo` prints: the URLs, the demo credentials and ready-to-paste commands."""

from __future__ import annotations

import shlex

SAMPLE_EVENT = (
    '{"id":"demo-\'$T\'","type":"case.received",'
    '"case":{"folio":"MH-2026-\'$T\'","category":"Fuga de agua"},'
    '"citizen":{"msisdn":"55 1234 5678","name":"Ana","language":"es"}}'
)


def _signature(client: str, secret: str, method: str, path: str, body_var: str) -> str:
    """curl headers signing v2: HMAC-SHA256 of "<t>.<METHOD>.<path with query>.<body>" by openssl."""
    signed = f"$T.{method}.{path}.{body_var}"
    return (
        f"-H 'X-Smsgw-Client: {client}' "
        f'-H "X-Smsgw-Signature: t=$T,v2=$(printf \'%s\' "{signed}" '
        f"| openssl dgst -sha256 -hmac {shlex.quote(secret)} -r | cut -d' ' -f1)\""
    )


def post_command(base_url: str, client: str, secret: str) -> str:
    path = "/api/v1/events"
    return (
        f"T=$(date +%s); BODY='{SAMPLE_EVENT}'; "
        f"curl -sS -X POST {base_url}{path} -H 'Content-Type: application/json' "
        f'{_signature(client, secret, "POST", path, "$BODY")} -d "$BODY"; echo'
    )


def get_command(base_url: str, client: str, secret: str, message_id: str = "1") -> str:
    path = f"/api/v1/messages/{message_id}"
    return f"T=$(date +%s); curl -sS {base_url}{path} {_signature(client, secret, 'GET', path, '')}; echo"


def simulator_ports(simulator) -> str:
    carriers = simulator.settings.carriers
    return ", ".join(f"{c.name} on port {simulator.carrier_port(c.name)}" for c in carriers)


def banner(settings, gateway, simulator) -> str:
    client = settings.crm_clients[0]
    base = gateway.url
    carriers = ", ".join(
        f"{name} {'bound' if c.is_bound else 'NOT bound'}" for name, c in gateway.pool.carriers.items()
    )
    return "\n".join(
        [
            "",
            "smsgw demo is running (Ctrl-C stops it)",
            f"  gateway API        {base}   (health: {base}/healthz)",
            f"  dashboard          {base}/dashboard/   (user {settings.dashboard.user}, "
            f"password {settings.dashboard.password})",
            f"  virtual handsets   {simulator.http_url}/",
            f"  simulator SMPP     {simulator_ports(simulator)}",
            f"  links              {carriers}",
            f"  database           {settings.database.url}",
            f"  CRM client         id={client.id} secret={client.secret}",
            "",
            "Post a signed case.received event (paste into a shell):",
            "",
            "  " + post_command(base, client.id, client.secret),
            "",
            "Then look at the message it queued (put an id from message_ids in place of 1):",
            "",
            "  " + get_command(base, client.id, client.secret),
            "",
        ]
    )
