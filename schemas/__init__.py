"""The event contract: event dataclasses, Avro schemas and the codec that reads them."""
