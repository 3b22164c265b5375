"""The carrier links: SMPP 3.4 over asyncio. Knows SMPP, carriers, windows and rates; nothing of
citizens, priorities or leases. What it tells the application is a typed event (``events``).

- ``pool``: the carriers, routing and failover, capacity; built with a ``LinkEvents`` handler
- ``carrier``: one carrier's binds and policies; ``sending``: its queue, pump and answers
- ``jobs``: a message in memory (deadline, rank) and its outcome; ``submit_parts``: its submit_sm bodies
- ``session``: one bind's life; ``window``: requests awaiting answers; ``connection``: one TCP
  connection's frames in and out, and what each PDU from the SMSC gets
- ``inbound``: deliver_sm / data_sm to events; ``receipts``, ``reassembly``, ``concat``: their parts
- ``policies``: throttle (AIMD), rate (token bucket), router; ``config``: typed configuration
- ``pdu``, ``constants``, ``errors``, ``message_ids``, ``metrics``: codec, codes, ids, exposition
"""
