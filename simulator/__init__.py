"""The bundled SMSC simulator: see ``simulator/README.md``; entry points in :mod:`simulator.app`."""
