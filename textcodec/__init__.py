"""Text for SMS: the GSM 03.38 alphabet, choosing GSM-7 or UCS-2 (with transliteration), segments.

Shared by the composer (which picks the texts a citizen gets and counts their parts), the SMPP
link (which sends them) and the simulator. Nothing here knows SMPP's PDUs: building the parts of a
long message (UDH, SAR TLVs, message_payload) is the link's.
"""
