"""What `smsgw demo` prints (the URLs, the demo credentials and ready-to-paste commands) and the
demo's operator account."""

from __future__ import annotations

import shlex

from config.settings import env_token, parse_listen

# public demo values, like the demo CRM client's secret
DEMO_OPERATOR = "operator"
DEMO_OPERATOR_PASSWORD = "demo"

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


def ensure_demo_operator(database_url: str) -> bool:
    """Create the demo's admin account unless an operator of that name exists; whether it did."""
    from gateway import clock
    from gateway.domain.operators import Role
    from gateway.services.passwords import Passwords
    from gateway.store import operators as accounts
    from gateway.store.audit import record
    from gateway.store.db import Database

    def create(conn) -> bool:
        if accounts.find(conn, DEMO_OPERATOR) is not None:
            return False
        now = clock.utcnow()
        password_hash = Passwords().hash(DEMO_OPERATOR_PASSWORD)
        accounts.create(conn, DEMO_OPERATOR, Role.ADMIN, password_hash, now)
        detail = {"role": Role.ADMIN.label}
        record(conn, now, "operator.add", "demo", target=f"operator:{DEMO_OPERATOR}", detail=detail)
        return True

    db = Database(database_url)
    try:
        return db.transaction(create)
    finally:
        db.close()


def _with_port(listen: object, default: str, port: int) -> str:
    try:
        host = parse_listen(listen)[0] if isinstance(listen, str) else parse_listen(default)[0]
    except ValueError:  # the configuration's own check names the key
        host = parse_listen(default)[0]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _names(tables: object) -> list[str]:
    if not isinstance(tables, list):
        return []
    return [t["name"] for t in tables if isinstance(t, dict) and isinstance(t.get("name"), str)]


def port_overrides(raw: dict, base: int) -> dict[str, str]:
    """``smsgw demo --port-base N`` as SMSGW_* overrides of the configuration ``raw``: the gateway
    on N, the simulator's HTTP on N+1, its carriers on N+2, N+3… in their order, and the gateway's
    carriers of the same names pointed at them."""
    from simulator.settings import default_carriers_table

    sim = raw.get("simulator") if isinstance(raw.get("simulator"), dict) else {}
    carriers = sim.get("carriers") if isinstance(sim.get("carriers"), list) else default_carriers_table()
    names = _names(carriers)
    if base + 1 + len(names) > 65535:
        raise ValueError(f"--port-base {base}: the last of its {len(names) + 2} ports would be above 65535")
    gateway = raw.get("gateway") if isinstance(raw.get("gateway"), dict) else {}
    env = {
        "SMSGW_GATEWAY_LISTEN": _with_port(gateway.get("listen"), "127.0.0.1:8080", base),
        "SMSGW_SIMULATOR_HTTP_LISTEN": _with_port(sim.get("http_listen"), "127.0.0.1:8081", base + 1),
    }
    gateway_carriers = set(_names(raw.get("carriers")))
    for i, name in enumerate(names):
        port = str(base + 2 + i)
        env[f"SMSGW_SIMULATOR_CARRIERS_{env_token(name)}_PORT"] = port
        if name in gateway_carriers:
            env[f"SMSGW_CARRIERS_{env_token(name)}_PORT"] = port
    return env


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
            f"  dashboard          {base}/dashboard/   (user {DEMO_OPERATOR}, "
            f"password {DEMO_OPERATOR_PASSWORD}, role admin; `smsgw operators add` makes more)",
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
