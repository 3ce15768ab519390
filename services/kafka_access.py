"""How the ledger reaches and authenticates to its Kafka brokers: the KAFKA_* settings as one
value, and the rules their combinations must follow.

Every Kafka client is built from a `KafkaAccess` (services/ledger/kafka_clients.py), so a process
either speaks to the brokers as its own principal or not at all. This module does no I/O:
files are opened where the clients are built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Final

SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def variable(name: str) -> str:
    """The environment variable of a KafkaAccess field (Settings attribute `kafka_<name>`)."""
    return f"KAFKA_{name.upper()}"


@dataclass(frozen=True, slots=True)
class KafkaAccess:
    """The brokers and the credentials a process uses for them; PLAINTEXT without any by
    default. Passwords never appear in `repr`."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    #: a file holding the SASL password (a Docker or Kubernetes secret), instead of the value
    sasl_password_file: str = ""
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_key_password: str = field(default="", repr=False)

    def environment(self) -> dict[str, str]:
        """The KAFKA_* variables (each field's name, upper case) that give a child process the
        same access; Settings reads them back into `kafka_<field>`."""
        return {
            variable(f.name): getattr(self, f.name) for f in fields(self) if getattr(self, f.name)
        }

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    @property
    def hosts(self) -> list[str]:
        """The host of every bootstrap server (`host:port`, `[v6]:port`), without brackets."""
        found = []
        for server in filter(None, (s.strip() for s in self.bootstrap_servers.split(","))):
            if server.startswith("[") and "]" in server:
                found.append(server[1 : server.index("]")])
            else:
                found.append(server.rpartition(":")[0] if server.count(":") == 1 else server)
        return found

    def problem(self, *, remote: bool) -> str | None:
        """What makes this combination unusable, naming the variables; None when it is fine.
        `remote`: a bootstrap server is not a loopback address."""
        protocol, mechanism = self.security_protocol, self.sasl_mechanism
        if protocol not in SECURITY_PROTOCOLS:
            return (
                f"KAFKA_SECURITY_PROTOCOL={protocol!r}; accepted: {', '.join(SECURITY_PROTOCOLS)}"
            )
        if protocol != "PLAINTEXT" and not self.bootstrap_servers:
            return (
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_BOOTSTRAP_SERVERS: the embedded"
                " broker `up` starts speaks PLAINTEXT only"
            )
        sasl_set = [
            name
            for name, value in (
                ("KAFKA_SASL_MECHANISM", mechanism),
                ("KAFKA_SASL_USERNAME", self.sasl_username),
                ("KAFKA_SASL_PASSWORD", self.sasl_password),
                ("KAFKA_SASL_PASSWORD_FILE", self.sasl_password_file),
            )
            if value
        ]
        if not self.uses_sasl and sasl_set:
            return (
                f"{', '.join(sasl_set)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not"
                " authenticate with SASL: use SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        if self.uses_sasl:
            if mechanism not in SASL_MECHANISMS:
                return (
                    f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM, one of"
                    f" {', '.join(SASL_MECHANISMS)} (not {mechanism!r})"
                )
            if not self.sasl_username:
                return f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME"
            if bool(self.sasl_password) == bool(self.sasl_password_file):
                return (
                    f"KAFKA_SECURITY_PROTOCOL={protocol} needs exactly one of"
                    " KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE"
                )
            if protocol == "SASL_PLAINTEXT" and mechanism == "PLAIN" and remote:
                return (
                    "KAFKA_SASL_MECHANISM=PLAIN with KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT sends"
                    " the password in clear to a broker off this host: use SCRAM-SHA-512 or"
                    " SASL_SSL"
                )
        ssl_set = [
            name
            for name, value in (
                ("KAFKA_SSL_CA_FILE", self.ssl_ca_file),
                ("KAFKA_SSL_CERT_FILE", self.ssl_cert_file),
                ("KAFKA_SSL_KEY_FILE", self.ssl_key_file),
                ("KAFKA_SSL_KEY_PASSWORD", self.ssl_key_password),
            )
            if value
        ]
        if not self.uses_tls and ssl_set:
            return (
                f"{', '.join(ssl_set)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use"
                " TLS: use SSL or SASL_SSL, or unset them"
            )
        if (self.ssl_key_file or self.ssl_key_password) and not self.ssl_cert_file:
            return "KAFKA_SSL_KEY_FILE and KAFKA_SSL_KEY_PASSWORD need KAFKA_SSL_CERT_FILE"
        return None

    def warnings(self, *, remote: bool) -> list[str]:
        """What is allowed but weak: said once at start, so an operator sees it in the log."""
        if not remote:
            return []
        if self.security_protocol == "PLAINTEXT" or (
            self.security_protocol == "SSL" and not self.ssl_cert_file
        ):
            return [
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol}: this process connects to"
                f" {self.bootstrap_servers} without credentials, so the brokers cannot tell it"
                " from anyone else who reaches them; use SASL_SSL and ACLs (docs/security.md)"
            ]
        if self.security_protocol == "SASL_PLAINTEXT":
            return [
                f"KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT: traffic to {self.bootstrap_servers} is"
                " not encrypted; use SASL_SSL where the network is not trusted"
            ]
        return []


#: the variables of everything but the brokers' addresses
KAFKA_SECURITY_VARIABLES: Final = tuple(
    variable(f.name) for f in fields(KafkaAccess) if f.name != "bootstrap_servers"
)
