"""Open311 GeoReport v2: polling a CRM's requests into case events (poller.py)."""
