"""Sign a model artifact for the ``signature`` and ``attestation`` gates, offline, with a key of
your own (docs/gates.md, examples/modelrelease-signed/).

    python -m hack.sign_artifact keygen --out release      # release.key (private), release.pub
    python -m hack.sign_artifact sign --key release.key model.bin > model.sigstore.json
    python -m hack.sign_artifact attest --key release.key model.bin \\
        --builder-id https://ci.example.com/builders/model-trainer@v1 \\
        --source-repository https://git.example.com/ml/fraud > model.intoto.sigstore.json

``sign`` writes a Sigstore bundle (v0.3, JSON) whose ``messageSignature`` signs the artifact's
SHA-256 digest with an ECDSA P-256 key, as ``cosign sign-blob --key`` does; ``attest`` writes
one whose ``dsseEnvelope`` carries an in-toto Statement v1 with a SLSA v1 provenance predicate
about the artifact. The bundles carry the key's fingerprint as a hint and no transparency-log
entry: key-based verification trusts the key alone. ``digest`` prints the artifact's digest as
``spec.artifact.digest`` writes it. The artifact may also be given as its digest
(``sha256:…``) rather than a file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from sigstore_models.bundle.v1 import Bundle

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def artifact_digest(artifact: str) -> str:
    """The digest of a file, or ``artifact`` itself when it is already ``sha256:<hex>``."""
    if artifact.startswith("sha256:"):
        bytes.fromhex(artifact.removeprefix("sha256:"))
        return artifact.lower()
    return file_digest(Path(artifact))


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit(f"{path}: not an ECDSA private key")
    return key


def _hint(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64(hashlib.sha256(der).digest())


def signature_bundle(key: ec.EllipticCurvePrivateKey, digest: str) -> dict[str, Any]:
    """A Sigstore bundle whose message signature signs ``digest`` (``sha256:<hex>``)."""
    raw = bytes.fromhex(digest.removeprefix("sha256:"))
    signature = key.sign(raw, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": _hint(key)}, "tlogEntries": []},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(raw)},
            "signature": _b64(signature),
        },
    }
    Bundle.model_validate_json(json.dumps(bundle))  # the shape every Sigstore client reads
    return bundle


def provenance(
    digest: str,
    name: str,
    *,
    builder_id: str,
    source_repository: str | None = None,
) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA v1 provenance predicate about ``digest``."""
    definition: dict[str, Any] = {
        "buildType": "https://rollwise.dev/model-training/v1",
        "externalParameters": {},
    }
    if source_repository is not None:
        definition["externalParameters"]["source"] = source_repository
        definition["resolvedDependencies"] = [{"uri": f"git+{source_repository}@refs/heads/main"}]
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {"buildDefinition": definition, "runDetails": {"builder": {"id": builder_id}}},
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def attestation_bundle(
    key: ec.EllipticCurvePrivateKey, statement: dict[str, Any]
) -> dict[str, Any]:
    """A Sigstore bundle whose DSSE envelope carries ``statement``, signed by ``key``."""
    payload = json.dumps(statement, separators=(",", ":")).encode()
    signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": _hint(key)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": _b64(payload),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": _b64(signature), "keyid": _hint(key)}],
        },
    }
    Bundle.model_validate_json(json.dumps(bundle))
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.sign_artifact", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="write OUT.key (private) and OUT.pub (public)")
    keygen.add_argument("--out", required=True, type=Path)
    digest = commands.add_parser("digest", help="print an artifact's sha256: digest")
    digest.add_argument("artifact")
    sign = commands.add_parser("sign", help="print a bundle signing the artifact's digest")
    sign.add_argument("--key", required=True, type=Path)
    sign.add_argument("artifact", help="a file, or its sha256:<hex> digest")
    attest = commands.add_parser("attest", help="print a bundle attesting the artifact's build")
    attest.add_argument("--key", required=True, type=Path)
    attest.add_argument("artifact", help="a file, or its sha256:<hex> digest")
    attest.add_argument("--name", help="the subject's name (default: the file's name)")
    attest.add_argument("--builder-id", required=True)
    attest.add_argument("--source-repository")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        key = new_key()
        private = args.out.with_suffix(".key")
        private.write_bytes(private_pem(key))
        private.chmod(0o600)
        args.out.with_suffix(".pub").write_bytes(public_pem(key))
        print(f"wrote {private} and {args.out.with_suffix('.pub')}")
        return 0
    if args.command == "digest":
        print(artifact_digest(args.artifact))
        return 0
    key = load_private_key(args.key)
    subject = artifact_digest(args.artifact)
    if args.command == "sign":
        out = signature_bundle(key, subject)
    else:
        name = args.name or Path(args.artifact).name
        statement = provenance(
            subject,
            name,
            builder_id=args.builder_id,
            source_repository=args.source_repository,
        )
        out = attestation_bundle(key, statement)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
