"""Plaintext only to loopback unless the caller opts in, by the Go client's rules
(client/balancer.go isLoopback): the first address that is not loopback is named."""

import pytest

from atelier import AtelierClient, PlaintextError


@pytest.mark.parametrize("target,refused", [
    ("localhost:8500", None),
    ("127.0.0.1:8500", None),
    ("[::1]:8500", None),
    ("127.3.2.1:8500", None),
    ("shop.localhost:8500", None),
    ("dns:///localhost:8500", None),
    ("dns://127.0.0.1:53/localhost:8500", None),
    ("unix:///tmp/atelier.sock", None),
    ("127.0.0.2:8500,127.0.0.3:8500, 127.0.0.4:8500", None),
    ("localhost:8500,", None),
    ("dns:///atelier-headless:8500", "dns:///atelier-headless:8500"),
    ("dns://127.0.0.1:53/atelier-headless:8500", "dns://127.0.0.1:53/atelier-headless:8500"),
    ("shop.example:8500", "shop.example:8500"),
    ("10.0.0.7:8500", "10.0.0.7:8500"),
    ("[2001:db8::1]:8500", "[2001:db8::1]:8500"),
    ("127.0.0.1:1,10.0.0.7:2", "10.0.0.7:2"),
])
def test_plaintext_beyond_loopback_needs_insecure(target, refused):
    if refused is None:
        AtelierClient(target, token="secret").close()
        return
    with pytest.raises(PlaintextError) as e:
        AtelierClient(target, token="secret")
    assert e.value.address == refused
    assert f"{refused} is not a loopback address" in str(e.value)
    assert "tls=True" in str(e.value) and "insecure=True" in str(e.value)
    AtelierClient(target, insecure=True).close()
    AtelierClient(target, tls=True).close()


@pytest.mark.parametrize("target,message", [
    ("atelier-0:8500,atelier-1:8500", "'atelier-0:8500' names a host; a list takes IP:port addresses (for every address of a name, use the target dns:///atelier-0:8500)"),
    ("127.0.0.1:8500,127.0.0.2", "'127.0.0.2' is not host:port"),
    ("127.0.0.1:8500,127.0.0.2:http", "'127.0.0.2:http' is not host:port"),
    ("127.0.0.1:8500,[::1]:8500", "mixes IPv4 and IPv6 addresses"),
])
def test_address_list_entries_must_be_addresses(target, message):
    """A list becomes gRPC's ipv4:/ipv6: target, which takes no names: the entry that
    would leave the channel connecting forever is named instead."""
    with pytest.raises(ValueError) as e:
        AtelierClient(target, insecure=True)
    assert message in str(e.value)


@pytest.mark.parametrize("target,want", [
    ("localhost:1,127.0.0.2:2", "ipv4:127.0.0.1:1,127.0.0.2:2"),
    ("localhost:1,[::1]:2", "ipv6:[::1]:1,[::1]:2"),
    ("127.0.0.1:1, 127.0.0.2:2,", "ipv4:127.0.0.1:1,127.0.0.2:2"),
    ("[2001:db8::1]:1,[2001:db8::2]:2", "ipv6:[2001:db8::1]:1,[2001:db8::2]:2"),
    ("localhost:8500", "localhost:8500"),
])
def test_address_list_targets(target, want):
    from atelier.client import _target
    assert _target(target) == want
