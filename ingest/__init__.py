"""The front door: MQTT readings in, rows in TimescaleDB out, acknowledged only after commit."""
