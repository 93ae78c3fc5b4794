"""A private Sigstore instance made by the tests, offline: a Fulcio-like CA, a CT log and a Rekor
log, each with a key of its own, and the ``trusted_root.json`` that trusts them.

:meth:`SigstoreInstance.sign` and :meth:`SigstoreInstance.attest` do what a keyless signer and
the public instance do together: a short-lived signing certificate for an identity and an OIDC
issuer (with the CT log's embedded SCT), a signature of the artifact's SHA-256 digest (or a DSSE
envelope of an in-toto statement), and a one-entry transparency log whose signed checkpoint,
inclusion proof and inclusion promise the bundle carries. The bundles verify with
sigstore-python's ``Verifier`` against :attr:`SigstoreInstance.trusted_root` alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Fulcio's extension naming the OIDC issuer (v1: the raw string).
OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
#: RFC 6962's embedded SCT list extension.
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(_der(key)).digest()


def _octet_string(data: bytes) -> bytes:
    """DER OCTET STRING (lengths up to 65535)."""
    if len(data) < 0x80:
        return b"\x04" + bytes([len(data)]) + data
    if len(data) < 0x100:
        return b"\x04\x81" + bytes([len(data)]) + data
    return b"\x04\x82" + struct.pack("!H", len(data)) + data


def _pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass
class SigstoreInstance:
    """A CA, a CT log and a transparency log of the tests' own (see the module doc)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rekor_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rollwise-tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, "rollwise-tests-ca"),
            ]
        )
        public = self.ca_key.public_key()
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=1))
            .not_valid_after(self.now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )

    # -- the trust root ----------------------------------------------------------------------

    def _log(self, key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": _b64(_der(key.public_key())),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": (self.now - timedelta(days=1)).isoformat()},
            },
            "logId": {"keyId": _b64(_key_id(key.public_key()))},
        }

    @property
    def trusted_root(self) -> str:
        """The ``trusted_root.json`` of this instance."""
        return json.dumps(
            {
                "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
                "tlogs": [self._log(self.rekor_key, "https://rekor.invalid")],
                "certificateAuthorities": [
                    {
                        "subject": {
                            "organization": "rollwise-tests",
                            "commonName": "rollwise-tests-ca",
                        },
                        "uri": "https://fulcio.invalid",
                        "certChain": {
                            "certificates": [
                                {"rawBytes": _b64(self.ca.public_bytes(serialization.Encoding.DER))}
                            ]
                        },
                        "validFor": {"start": (self.now - timedelta(days=1)).isoformat()},
                    }
                ],
                "ctlogs": [self._log(self.ct_key, "https://ctfe.invalid")],
                "timestampAuthorities": [],
            },
            indent=2,
        )

    # -- the certificate ---------------------------------------------------------------------

    def _leaf_builder(
        self, public: ec.EllipticCurvePublicKey, identity: str, issuer: str, at: datetime
    ) -> x509.CertificateBuilder:
        san: x509.GeneralName = (
            x509.RFC822Name(identity)
            if "@" in identity and "://" not in identity
            else x509.UniformResourceIdentifier(identity)
        )
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - timedelta(seconds=30))
            .not_valid_after(at + timedelta(minutes=10))
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(OIDC_ISSUER_OID, issuer.encode()), critical=False
            )
        )

    def _sct_list(self, sct: bytes) -> bytes:
        item = struct.pack("!H", len(sct)) + sct
        return _octet_string(struct.pack("!H", len(item)) + item)

    def certificate(
        self, public: ec.EllipticCurvePublicKey, identity: str, issuer: str, at: datetime
    ) -> x509.Certificate:
        """A Fulcio-like signing certificate with the CT log's embedded SCT."""
        builder = self._leaf_builder(public, identity, issuer, at)
        # The SCT signs the precertificate (the certificate without the SCT list): build once
        # with a placeholder list of the same shape, read the precertificate's TBS, sign it.
        log_id = _key_id(self.ct_key.public_key())
        millis = int(at.timestamp() * 1000)

        def sct(signature: bytes) -> bytes:
            return (
                struct.pack("!B32sQH", 0, log_id, millis, 0)
                + struct.pack("!BBH", 4, 3, len(signature))
                + signature
            )

        draft = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST_OID, self._sct_list(sct(b"\0" * 72))),
            critical=False,
        ).sign(self.ca_key, hashes.SHA256())
        tbs = draft.tbs_precertificate_bytes
        issuer_key_id = _key_id(self.ca_key.public_key())
        entry = issuer_key_id + struct.pack("!I", len(tbs))[1:] + tbs
        signed = struct.pack("!BBQH", 0, 0, millis, 1) + entry + struct.pack("!H", 0)
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST_OID, self._sct_list(sct(signature))),
            critical=False,
        ).sign(self.ca_key, hashes.SHA256())

    # -- the log -----------------------------------------------------------------------------

    def _log_entry(self, kind: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
        canonical = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        root = hashlib.sha256(b"\x00" + canonical).digest()  # a tree of one leaf
        rekor_id = _key_id(self.rekor_key.public_key())
        note = f"rekor.invalid - 1\n1\n{_b64(root)}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 rekor.invalid {_b64(rekor_id[:4] + note_signature)}\n"
        integrated = int(at.timestamp())
        promise = rfc8785.dumps(
            {
                "body": _b64(canonical),
                "integratedTime": integrated,
                "logID": rekor_id.hex(),
                "logIndex": 0,
            }
        )
        return {
            "logIndex": "0",
            "logId": {"keyId": _b64(rekor_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(
                    self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256()))
                )
            },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": _b64(root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(canonical),
        }

    # -- signing -----------------------------------------------------------------------------

    def sign(
        self, digest: str, *, identity: str, issuer: str, at: datetime | None = None
    ) -> dict[str, Any]:
        """A keyless bundle signing ``digest`` (``sha256:<hex>``) as ``identity``."""
        when = at or self.now - timedelta(minutes=1)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.certificate(key.public_key(), identity, issuer, when)
        raw = bytes.fromhex(digest.removeprefix("sha256:"))
        signature = key.sign(raw, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": raw.hex()}},
                "signature": {"content": _b64(signature), "publicKey": {"content": _b64(pem)}},
            },
        }
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self._log_entry("hashedrekord", body, when)],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(raw)},
                "signature": _b64(signature),
            },
        }

    def attest(
        self,
        statement: dict[str, Any],
        *,
        identity: str,
        issuer: str,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A keyless bundle whose DSSE envelope carries ``statement``, signed as ``identity``."""
        when = at or self.now - timedelta(minutes=1)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.certificate(key.public_key(), identity, issuer, when)
        payload = json.dumps(statement, separators=(",", ":")).encode()
        signature = key.sign(_pae(INTOTO_PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
        envelope = {
            "payload": _b64(payload),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": _b64(signature)}],
        }
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [{"signature": _b64(signature), "verifier": _b64(pem)}],
            },
        }
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self._log_entry("dsse", body, when)],
            },
            "dsseEnvelope": envelope,
        }
