"""Where both clients' calls go and how: the target (one address, a list balanced
round-robin, a dns: name), plaintext only to loopback, the service config that
retries the safe methods, the metadata every call carries, and the deadline and
retry-after wait of a unary call. The channel is grpc's or grpc.aio's; these rules
are the same for both."""

from __future__ import annotations

import ipaddress
import json
import numbers
import os
import random
import time
import types
from typing import Any, Sequence

import grpc
from grpc_health.v1 import health_pb2_grpc  # type: ignore[import-untyped]

from atelier._images import MAX_MESSAGE_BYTES
from atelier._protocol import AtelierError, _error
from atelier.v1 import (
    alert_service_pb2_grpc as alert_grpc,
    classify_service_pb2_grpc as classify_grpc,
    detect_service_pb2_grpc as detect_grpc,
    generate_service_pb2_grpc as generate_grpc,
    model_service_pb2_grpc as model_grpc,
)

# gRPC Python turns a deadline past 2**63 ns since 1970 (a timeout of about 7e9 s, or
# inf) into one already past, so that the call fails at once with DEADLINE_EXCEEDED: a
# longer timeout is taken as this one, 31 years, as good as none.
_MAX_TIMEOUT = 1e9

# The methods a retry cannot harm: read-only or idempotent. The admin calls
# (ReloadRepository, LoadModel, UnloadModel, SetVersionLabels) are not: an attempt may
# have run before its answer was lost, and a second would report a false error
# (UnloadModel's NOT_FOUND).
_RETRYABLE = [
    {"service": "atelier.v1.ClassifyService", "method": "Classify"},
    {"service": "atelier.v1.DetectService", "method": "Detect"},
    {"service": "atelier.v1.GenerateService", "method": "Generate"},
    {"service": "atelier.v1.ModelService", "method": "ListModels"},
    {"service": "atelier.v1.ModelService", "method": "GetModel"},
    {"service": "atelier.v1.ModelService", "method": "GetModelStatus"},
    {"service": "grpc.health.v1.Health", "method": "Check"},
]

_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": _RETRYABLE,
        "retryPolicy": {
            "maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
}
SERVICE_CONFIG = json.dumps(_SERVICE_CONFIG)

# For several servers (a list, or a dns: name with several addresses): only those
# whose grpc.health.v1 status is SERVING get calls, so a starting or draining replica
# is skipped before it closes its connections.
BALANCED_SERVICE_CONFIG = json.dumps({**_SERVICE_CONFIG, "healthCheckConfig": {"serviceName": ""}})


class PlaintextError(ValueError):
    """A client's refusal to send plaintext (and a token with it) to an address
    that is not loopback when neither TLS nor insecure=True is asked for."""

    def __init__(self, address: str):
        super().__init__(f"{address} is not a loopback address: use TLS (tls=True or "
                         "root_certificates=...), or insecure=True to send plaintext on purpose")
        self.address = address


def _timeout(name: str, seconds: float | None) -> float | None:
    """A call's timeout as gRPC takes it: None (no deadline) or a positive number of
    seconds, at most _MAX_TIMEOUT (a longer one, inf included, would be no time at all)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(seconds).__name__}")
    if not seconds > 0:  # NaN too
        raise ValueError(f"{name} must be positive, not {seconds!r}")
    return min(float(seconds), _MAX_TIMEOUT)


def _target(addrs: str) -> str:
    """One address as is; a list of IP:port addresses as an ipv4:/ipv6: target.

    gRPC's ipv4:/ipv6: targets take addresses only: an entry naming a host raises
    ValueError, which says so, rather than a channel that never connects; localhost is
    taken as the loopback address of the list's family."""
    parts = [a.strip() for a in addrs.split(",") if a.strip()]
    if len(parts) < 2:
        return parts[0] if parts else addrs
    v6 = all(p.startswith("[") or p.startswith("localhost:") for p in parts) and \
        any(p.startswith("[") for p in parts)
    entries = []
    for p in parts:
        host = _split_host_port(p)
        port = p.rsplit(":", 1)[1] if host is not None else ""
        if host is None or not port.isdigit():
            raise ValueError(f"address list entry {p!r} is not host:port")
        if host == "localhost":
            host = "::1" if v6 else "127.0.0.1"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"address list entry {p!r} names a host; a list takes IP:port addresses "
                f"(for every address of a name, use the target dns:///{p})") from None
        if (ip.version == 6) != v6:
            raise ValueError(f"address list {addrs!r} mixes IPv4 and IPv6 addresses; "
                             "gRPC's address lists take one family")
        entries.append(f"[{ip}]:{port}" if v6 else f"{ip}:{port}")
    return f"{'ipv6' if v6 else 'ipv4'}:{','.join(entries)}"


def _split_host_port(addr: str) -> str | None:
    """The host of "host:port" or "[v6]:port" (as Go's net.SplitHostPort), or None."""
    if addr.startswith("["):
        end = addr.find("]")
        return addr[1:end] if end > 0 and addr[end + 1:end + 2] == ":" else None
    host, sep, _ = addr.rpartition(":")
    return host if sep and ":" not in host else None


def _is_loopback(addr: str) -> bool:
    """Whether a target names this machine: localhost, 127.0.0.0/8, ::1 or a unix
    socket; a dns: target by the name it looks up. The Go client's rule."""
    if addr.startswith(("unix:", "unix-abstract:")):
        return True
    if "://" in addr:  # dns:///host:port, dns://server/host:port
        _, rest = addr.split("://", 1)
        if "/" in rest:
            addr = rest.split("/", 1)[1]
    host = _split_host_port(addr)
    if host is None:
        host = addr
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _non_loopback(addrs: str) -> str | None:
    """The first address of a target or a list that is not loopback, or None."""
    return next((a for a in (p.strip() for p in addrs.split(",")) if a and not _is_loopback(a)), None)


def _service_config(target: str) -> str:
    """Health-checked balancing for several servers (a list or a dns: name); one
    address goes without, so that health() can report its NOT_SERVING."""
    return BALANCED_SERVICE_CONFIG if "," in target or target.startswith("dns:") else SERVICE_CONFIG


def _retry_after(e: grpc.RpcError) -> float | None:
    """The seconds a call refused by the server's rate limit should wait (its
    retry-after-ms or retry-after trailer, plus up to 20% so that callers refused
    together do not return together), or None for any other failure."""
    if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    trailer = dict(e.trailing_metadata() or ())
    try:
        if "retry-after-ms" in trailer:
            wait = int(trailer["retry-after-ms"]) / 1000
        elif "retry-after" in trailer:
            wait = float(trailer["retry-after"])
        else:
            return None
    except ValueError:
        return None
    if not 0 <= wait < 1e6:
        return None
    return max(wait, 0.01) * random.uniform(1.0, 1.2)


def _wants_tls(tls: bool, root_certificates: bytes | None, certificate_chain: bytes | None) -> bool:
    """Whether a client's options ask for TLS (else its channel is plaintext)."""
    return bool(tls or root_certificates or certificate_chain)


# A plaintext connection the server closes during the handshake: gRPC says only
# "Socket closed" (or "Connection reset by peer"), within its words for a call that
# found no server to take it. A TLS server does that to a client that does not speak
# TLS, which is then the likely cause, as the Go CLI's hints say.
_CONNECT_FAILED = ("failed to connect to all addresses", "connections to all backends failing")
_CLOSED_IN_HANDSHAKE = ("Socket closed", "Connection reset by peer")
PLAINTEXT_TO_TLS_HINT = ("the server closed the plaintext connection during the handshake: is the "
                         "server serving TLS? then connect with tls=True or root_certificates=...")


def _connection_hint(e: grpc.RpcError, plaintext: bool) -> str:
    """The likely cause of a call's failure to connect, or "": only a plaintext
    client's, whose connection the server closed before any answer, gets the TLS hint."""
    details = e.details() or ""
    if (plaintext and e.code() == grpc.StatusCode.UNAVAILABLE
            and any(s in details for s in _CONNECT_FAILED)
            and any(s in details for s in _CLOSED_IN_HANDSHAKE)):
        return PLAINTEXT_TO_TLS_HINT
    return ""


def _open_channel(api: types.ModuleType, target: str, tls: bool,
                  root_certificates: bytes | None, certificate_chain: bytes | None,
                  private_key: bytes | None, insecure: bool) -> Any:
    """A channel of api (grpc, or grpc.aio) to target, with TLS if any of tls,
    root_certificates or certificate_chain asks for it; plaintext beyond loopback
    raises PlaintextError unless insecure."""
    options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.service_config", _service_config(target)),
               ("grpc.enable_retries", 1),
               # look the name up again soon after a connection fails (default 30 s)
               ("grpc.dns_min_time_between_resolutions_ms", 1000)]
    if _wants_tls(tls, root_certificates, certificate_chain):
        creds = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                             private_key=private_key,
                                             certificate_chain=certificate_chain)
        return api.secure_channel(_target(target), creds, options=options)
    remote = _non_loopback(target)
    if remote is not None and not insecure:
        raise PlaintextError(remote)
    return api.insecure_channel(_target(target), options=options)


_Metadata = list[tuple[str, str]]


def _client_metadata(token: str | None, priority: str | None) -> _Metadata:
    """What every call of a client carries: its bearer token (default:
    $ATELIER_TOKEN) and its priority."""
    if token is None:
        token = os.environ.get("ATELIER_TOKEN") or None
    metadata = []
    if token:
        metadata.append(("authorization", "Bearer " + token))
    if priority:
        metadata.append(("x-atelier-priority", priority))
    return metadata


def _admin_metadata(token: str | None) -> _Metadata | None:
    """An admin call's own token, which replaces the client's."""
    return [("authorization", f"Bearer {token}")] if token else None


def _merge_metadata(own: Sequence[tuple[str, str]] | None, client: _Metadata) -> _Metadata:
    """A call's own metadata, then the client's for every key the call does not set:
    an admin call's token replaces the client's, so that the call sends one token,
    the one it was given."""
    own = list(own or [])
    keys = {k for k, _ in own}
    return own + [(k, v) for k, v in client if k not in keys]


class _Deadline:
    """The deadline of one unary call and of the attempts the server's rate limit
    makes it repeat: each attempt gets what is left of the call's timeout."""

    def __init__(self, timeout: float, plaintext: bool = False):
        self._end = time.monotonic() + timeout
        self._plaintext = plaintext

    def left(self) -> float:
        return max(self._end - time.monotonic(), 0.001)

    def wait_after(self, e: grpc.RpcError) -> float:
        """The seconds to wait before the next attempt of a call that failed with e;
        raises e's AtelierError when there is none: e is not a rate limit's refusal
        with a retry-after, or the wait would end past the deadline."""
        wait = _retry_after(e)
        if wait is None or time.monotonic() + wait >= self._end:
            raise _error(e, _connection_hint(e, self._plaintext)) from None
        return wait


_CLOSED_WHILE_WAITING = "the client was closed while the call waited to be made again"


class _Stubs:
    """The generated stub of every service, on one channel (grpc's or grpc.aio's);
    plaintext says the client made that channel without TLS."""

    def __init__(self, channel: Any, plaintext: bool = False):
        self._plaintext = plaintext
        self.classify_stub = classify_grpc.ClassifyServiceStub(channel)
        self.detect_stub = detect_grpc.DetectServiceStub(channel)
        self.generate_stub = generate_grpc.GenerateServiceStub(channel)
        self.model_stub = model_grpc.ModelServiceStub(channel)
        self.alert_stub = alert_grpc.AlertServiceStub(channel)
        self.health_stub = health_pb2_grpc.HealthStub(channel)

    def _fail(self, e: grpc.RpcError) -> AtelierError:
        """e's AtelierError, with a hint at the cause when it failed to connect."""
        return _error(e, _connection_hint(e, self._plaintext))
