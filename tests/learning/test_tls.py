"""Link security without starting Flower: the hub CA and SuperLink certificates (chain, SANs,
key modes, reuse), the operator's certificate, SuperNode keys, and the flags each Flower
process gets (TLS + SuperNode authentication unless explicitly insecure)."""

from __future__ import annotations

import ipaddress
import json
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from healthmesh.errors import InvalidInput
from healthmesh.learning.deploy import DeploymentError, SuperLink, superlink_args, supernode_args
from healthmesh.learning.tls import (
    CA_KEY,
    HubCA,
    LinkSecurity,
    check_node_public_key,
    load_ca_pem,
    new_node_key,
    operator_tls,
)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_hub_ca_is_kept_private_and_reused(tmp_path: Path) -> None:
    ca = HubCA.load_or_create(tmp_path / "ca")
    assert _mode(tmp_path / "ca" / CA_KEY) == 0o600 and _mode(tmp_path / "ca") == 0o700
    again = HubCA.load_or_create(tmp_path / "ca")
    assert again.cert.fingerprint(ca.cert.signature_hash_algorithm) == ca.cert.fingerprint(
        ca.cert.signature_hash_algorithm)
    assert load_ca_pem(ca.cert_path.read_text()).subject == ca.cert.subject


def test_hub_ca_created_once_by_concurrent_jobs_and_checked_on_load(tmp_path: Path) -> None:
    with ThreadPoolExecutor(6) as pool:
        cas = list(pool.map(lambda _: HubCA.load_or_create(tmp_path / "ca"), range(6)))
    assert len({ca.cert.serial_number for ca in cas}) == 1
    other = HubCA.load_or_create(tmp_path / "other")
    (tmp_path / "ca" / "ca.pem").write_bytes(other.cert_path.read_bytes())
    with pytest.raises(InvalidInput, match="does not belong"):
        HubCA.load_or_create(tmp_path / "ca")


def test_superlink_certificate_chains_to_the_ca_and_names_its_hosts(tmp_path: Path) -> None:
    ca = HubCA.load_or_create(tmp_path / "ca")
    tls = ca.issue_server(tmp_path / "s", ["hub.example.org", "10.0.0.5", "127.0.0.1"])
    assert _mode(tls.keyfile) == 0o600
    cert = x509.load_pem_x509_certificate(tls.certfile.read_bytes())
    cert.verify_directly_issued_by(ca.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hub.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"),
                                                       ipaddress.ip_address("127.0.0.1")]
    # what a TLS client does with it: the CA file verifies, the key matches the certificate
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls.certfile, tls.keyfile)
    ssl.create_default_context(cafile=str(tls.ca_cert))
    with pytest.raises(InvalidInput, match="host"):
        ca.issue_server(tmp_path / "t", ["-bad"])
    with pytest.raises(InvalidInput):
        ca.issue_server(tmp_path / "t", [])


def test_operator_certificate_is_used_only_when_signed_by_its_ca(tmp_path: Path) -> None:
    theirs = HubCA.load_or_create(tmp_path / "their-ca")
    supplied = tmp_path / "flower-tls"
    issued = theirs.issue_server(supplied, ["127.0.0.1"])
    assert operator_tls(supplied) == issued  # superlink.pem, superlink.key, ca.pem, no ca.key
    sec = LinkSecurity(tls_dir=supplied)
    assert sec.server_tls(tmp_path / "w", ["127.0.0.1"]) == issued
    # a certificate from another CA beside this ca.pem is refused
    (supplied / "ca.pem").write_bytes(
        HubCA.load_or_create(tmp_path / "other").cert_path.read_bytes())
    with pytest.raises(InvalidInput, match="not signed"):
        operator_tls(supplied)
    # the hub's own CA directory is not an operator's certificate
    HubCA.load_or_create(tmp_path / "hub")
    assert operator_tls(tmp_path / "hub") is None
    assert LinkSecurity(insecure=True).server_tls(tmp_path / "w", ["x"]) is None


def test_node_keys_are_fresh_p384_openssh_and_checked(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = new_node_key(tmp_path / "a"), new_node_key(tmp_path / "b")
    assert a.public_key != b.public_key and a.public_key.startswith("ecdsa-sha2-nistp384 ")
    assert _mode(a.private_path) == 0o600
    assert b"OPENSSH PRIVATE KEY" in a.private_path.read_bytes()
    assert check_node_public_key(a.public_key + "\n") == a.public_key
    ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    for bad in (ed, "not a key", 42, "", "x" * 2000):
        with pytest.raises(InvalidInput):
            check_node_public_key(bad)
    for bad_ca in (None, "", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(InvalidInput, match="ca_cert"):
            load_ca_pem(bad_ca)


def test_flags_are_secure_unless_insecure_is_explicit(tmp_path: Path) -> None:
    tls = HubCA.load_or_create(tmp_path / "ca").issue_server(tmp_path / "s", ["127.0.0.1"])
    argv = superlink_args(9000, tmp_path / "db", tls)
    assert "--insecure" not in argv and "--enable-supernode-auth" in argv
    assert argv[argv.index("--ssl-certfile") + 1] == str(tls.certfile)
    assert argv[argv.index("--ssl-keyfile") + 1] == str(tls.keyfile)
    assert argv[argv.index("--ssl-ca-certfile") + 1] == str(tls.ca_cert)
    assert "--disable-runtime-dependency-installation" in argv
    assert "--insecure" in superlink_args(9000, tmp_path / "db", None)
    node = supernode_args("hub:9000", 9001, {"institution": "h1", "data": "/d.npz"},
                          root_certificates=tls.ca_cert, auth_key=tmp_path / "k")
    assert "--insecure" not in node
    assert node[node.index("--root-certificates") + 1] == str(tls.ca_cert)
    assert node[node.index("--auth-supernode-private-key") + 1] == str(tmp_path / "k")
    assert node[node.index("--node-config") + 1] == 'institution="h1" data="/d.npz"'
    with pytest.raises(InvalidInput, match="CA certificate and its key"):
        supernode_args("hub:9000", 9001, {}, root_certificates=None, auth_key=None)
    with pytest.raises(InvalidInput, match="insecure"):
        supernode_args("hub:9000", 9001, {}, root_certificates=tls.ca_cert, auth_key=None,
                       insecure=True)
    assert "--insecure" in supernode_args("hub:9000", 9001, {}, root_certificates=None,
                                          auth_key=None, insecure=True)
    with pytest.raises(InvalidInput, match="plain"):
        supernode_args("hub:9000", 9001, {"data": 'x" --insecure "'},
                       root_certificates=tls.ca_cert, auth_key=tmp_path / "k")


def test_superlink_defaults_to_tls_and_refuses_keys_when_insecure(tmp_path: Path) -> None:
    assert not SuperLink().insecure and not LinkSecurity().insecure
    link = SuperLink(tmp_path, security=LinkSecurity(insecure=True))
    link.workdir = tmp_path
    with pytest.raises(DeploymentError, match="insecure"):
        link.register_node("ecdsa-sha2-nistp384 AAAA", "h1")
    # the flwr CLI configuration trusts the CA file (no 'insecure') on a secure link
    link = SuperLink(tmp_path)
    link.tls = HubCA.load_or_create(tmp_path / "ca").issue_server(tmp_path / "s", ["127.0.0.1"])
    link.port = 1234
    link._write_config()
    config = (tmp_path / "flwr-home" / "config.toml").read_text()
    assert f"root-certificates = {json.dumps(str(link.tls.ca_cert))}" in config
    assert "insecure" not in config and 'address = "127.0.0.1:1234"' in config
