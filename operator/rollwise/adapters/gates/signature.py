"""Two gates on Sigstore bundles: ``signature`` and ``attestation``. Pure judgement of what was
read (the evaluator reads the bundle and the key, within the evidence policy); offline: nothing
here reaches a network, a TUF repository or a transparency log.

Both verify a `Sigstore bundle <https://docs.sigstore.dev/about/bundle/>`_ (JSON, media type
``application/vnd.dev.sigstore.bundle…``) against what the release names in a ConfigMap, in one
of two ways:

* *key-based*, as ``cosign verify-blob --key`` does it: a public key (PEM: ECDSA
  P-256/P-384/P-521, RSA, or Ed25519 for attestations). The key alone is trusted, so the
  bundle's verification material (a key hint) and any transparency-log entry it carries are not
  what decides. sigstore-python's ``Verifier`` verifies only certificate bundles, so these
  signatures are checked here with ``cryptography`` on the bytes Sigstore defines (the
  artifact's SHA-256 digest for a message signature, the DSSE pre-authentication encoding for
  an envelope), the bundle read with sigstore-python's models;
* *keyless*: a trusted root (``trusted_root.json``: the certificate authority, the
  transparency log and the CT log keys), the identity (the signing certificate's email or URI
  SAN) and the OIDC issuer. sigstore-python's ``Verifier`` built on that root alone, with an
  ``Identity`` policy, checks the certificate chain at the logged time, its embedded SCT, the
  log entry's inclusion proof, signed checkpoint and inclusion promise, and the signature: all
  carried by the bundle, so nothing is fetched.

``signature``: the bundle's ``messageSignature`` signs the release's ``artifact.digest``
(``sha256:…``); the ``artifact-digest`` gate binds that digest to the artifact's bytes, so a
changed artifact fails one gate or the other. A ``messageDigest`` the bundle states must be that
digest too.

``attestation``: the bundle's ``dsseEnvelope`` carries an in-toto statement
(``application/vnd.in-toto+json``, Statement v0.1 or v1) signed by the key, one of whose
subjects has the artifact's SHA-256 digest. Optional checks of the predicate: its type, the SLSA
builder id (v1 ``runDetails.builder.id``, v0.2 ``builder.id``) and the source repository (v1
``buildDefinition.externalParameters.workflow.repository`` or ``.source``, and the
``resolvedDependencies``; v0.2 ``invocation.configSource.uri`` and the ``materials``), compared
without a ``git+`` prefix, an ``@ref`` suffix, a ``.git`` suffix or a trailing slash.

Every failure is one sentence saying what is wrong and ends with "no evidence, no promotion".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from pydantic import ValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle as VerifiedBundle
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity
from sigstore_models.bundle.v1 import Bundle
from sigstore_models.common.v1 import HashAlgorithm
from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootDocument

from rollwise.adapters.gates.outcome import Outcome, short_digest

#: The DSSE payload type of an in-toto statement.
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: The keys of a keyless verifier's ConfigMap.
TRUSTED_ROOT_KEY = "trusted_root.json"
IDENTITY_KEY = "identity"
ISSUER_KEY = "issuer"
#: Characters of sigstore-python's own reason quoted in a message.
MAX_REASON = 240
#: The in-toto statement types read.
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")

_NO_EVIDENCE = "no evidence, no promotion"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class UnusableEvidence(ValueError):
    """A bundle or a key cannot be read as what the gate needs."""


@dataclass(frozen=True)
class VerificationKey:
    """A public key and where it came from: ``name`` is the source and its fingerprint."""

    key: PublicKey
    name: str


@dataclass(frozen=True)
class KeylessTrust:
    """A trusted root and the identity and OIDC issuer a signing certificate must name;
    ``name`` is the source."""

    trusted_root: TrustedRoot
    identity: str
    issuer: str
    name: str

    @property
    def policy(self) -> Identity:
        return Identity(identity=self.identity, issuer=self.issuer)

    def describe(self) -> str:
        return f"against the trusted root {self.name} for {self.identity} from {self.issuer}"


SignatureVerifier = VerificationKey | KeylessTrust


def describe(verifier: SignatureVerifier) -> str:
    """How a message names what verified (or did not verify) a bundle."""
    if isinstance(verifier, KeylessTrust):
        return verifier.describe()
    return f"with the key {verifier.name}"


@dataclass(frozen=True)
class PredicateChecks:
    """What an attestation's predicate must say (None: not checked)."""

    predicate_type: str | None = None
    builder_id: str | None = None
    source_repository: str | None = None


def load_key(pem: bytes, where: str) -> VerificationKey:
    """The public key of a PEM document (``-----BEGIN PUBLIC KEY-----``)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise UnusableEvidence(f"the key {where} is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise UnusableEvidence(
            f"the key {where} is a {type(key).__name__}, not an ECDSA, RSA or Ed25519 key"
        )
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = short_digest("sha256:" + hashlib.sha256(der).hexdigest())
    return VerificationKey(key, f"{where} ({fingerprint})")


def load_keyless(data: Mapping[str, str], where: str) -> KeylessTrust:
    """The keyless verifier of a ConfigMap's data: ``trusted_root.json`` (a Sigstore trusted
    root: the CA, transparency log and CT log keys), ``identity`` (the signing certificate's
    SAN: an email or URI) and ``issuer`` (the OIDC issuer it records)."""
    missing = [k for k in (TRUSTED_ROOT_KEY, IDENTITY_KEY, ISSUER_KEY) if not data.get(k)]
    if missing:
        raise UnusableEvidence(f"the keyless verifier {where} lacks {', '.join(missing)}")
    try:
        document = TrustedRootDocument.model_validate_json(data[TRUSTED_ROOT_KEY])
        root = TrustedRoot(document)
        root.get_fulcio_certs()
        Verifier(trusted_root=root)
    except (ValidationError, SigstoreError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:MAX_REASON] if str(exc) else type(exc).__name__
        raise UnusableEvidence(
            f"the trusted root of {where} is not a usable Sigstore trusted root ({reason})"
        ) from None
    return KeylessTrust(root, data[IDENTITY_KEY].strip(), data[ISSUER_KEY].strip(), where)


def _sigstore_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:MAX_REASON].rstrip(".")


def _keyless_bundle(raw: bytes, trust: KeylessTrust, where: str) -> VerifiedBundle | str:
    """The bundle as sigstore-python's verifier reads it, or why it cannot be verified."""
    try:
        return VerifiedBundle.from_json(raw)
    except SigstoreError as exc:
        return f"the bundle {where} cannot be verified {trust.describe()}: {_sigstore_reason(exc)}"


def read_bundle(raw: bytes, where: str) -> Bundle:
    """A Sigstore bundle (any published media type) from its JSON."""
    try:
        return Bundle.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first.get("loc", ())) or "the document"
        raise UnusableEvidence(
            f"the bundle {where} is not a Sigstore bundle ({at}: {first.get('msg', 'invalid')})"
        ) from None


def _hex_digest(digest: str) -> str:
    return digest.partition(":")[2].lower()


def _verify_prehashed(key: PublicKey, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` signs the SHA-256 ``digest`` (hashedrekord's convention)."""
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _curve_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    size = key.curve.key_size
    return hashes.SHA256() if size <= 256 else hashes.SHA384() if size <= 384 else hashes.SHA512()


def _verify_message(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` signs ``message`` (a DSSE envelope's PAE)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(_curve_hash(key)))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what an envelope's signatures sign."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def check_signature(raw_bundle: bytes, key: SignatureVerifier, digest: str, where: str) -> Outcome:
    """Passed when the bundle's message signature signs ``digest``: with ``key``, or (keyless)
    with a certificate for the expected identity and issuer, chained to the trusted root and
    logged in its transparency log (sigstore-python's ``Verifier``, offline)."""
    try:
        bundle = read_bundle(raw_bundle, where)
    except UnusableEvidence as exc:
        return Outcome.failed(f"{exc}; {_NO_EVIDENCE}")
    signed = bundle.message_signature
    if signed is None:
        return Outcome.failed(
            f"the bundle {where} holds a DSSE envelope (an attestation), not a signature of the "
            f"artifact; {_NO_EVIDENCE}"
        )
    expected = bytes.fromhex(_hex_digest(digest))
    stated = signed.message_digest
    if stated is not None:
        if stated.algorithm is not HashAlgorithm.SHA2_256:
            return Outcome.failed(
                f"the bundle {where} signs a {stated.algorithm.value} digest, not the artifact's "
                f"SHA-256 digest; {_NO_EVIDENCE}"
            )
        if stated.digest != expected:
            return Outcome.failed(
                f"the bundle {where} is for sha256:{stated.digest.hex()[:12]}, not the "
                f"artifact's {short_digest(digest)}; {_NO_EVIDENCE}"
            )
    if isinstance(key, KeylessTrust):
        return _check_keyless_signature(raw_bundle, key, digest, where)
    if isinstance(key.key, ed25519.Ed25519PublicKey):
        return Outcome.failed(
            f"the key {key.name} is an Ed25519 key, which cannot verify a signature of a "
            f"digest (use an ECDSA or RSA key); {_NO_EVIDENCE}"
        )
    if not _verify_prehashed(key.key, signed.signature, expected):
        return Outcome.failed(
            f"the signature in {where} does not verify for {short_digest(digest)} with the key "
            f"{key.name}: another key signed it, or it signs another artifact; {_NO_EVIDENCE}"
        )
    return Outcome.passed(f"{short_digest(digest)} signed: bundle {where} verified {describe(key)}")


def _check_keyless_signature(
    raw_bundle: bytes, trust: KeylessTrust, digest: str, where: str
) -> Outcome:
    bundle = _keyless_bundle(raw_bundle, trust, where)
    if isinstance(bundle, str):
        return Outcome.failed(f"{bundle}; {_NO_EVIDENCE}")
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(_hex_digest(digest)))
    try:
        Verifier(trusted_root=trust.trusted_root).verify_artifact(hashed, bundle, trust.policy)
    except SigstoreError as exc:
        return Outcome.failed(
            f"the signature in {where} does not verify for {short_digest(digest)} "
            f"{trust.describe()}: {_sigstore_reason(exc)}; {_NO_EVIDENCE}"
        )
    return Outcome.passed(
        f"{short_digest(digest)} signed: bundle {where} verified {trust.describe()}"
    )


def _statement(payload: bytes, where: str) -> Mapping[str, Any]:
    try:
        doc: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise UnusableEvidence(f"the attestation {where} is not a JSON in-toto statement") from None
    if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
        raise UnusableEvidence(
            f"the attestation {where} is not an in-toto statement (_type is not "
            f"{' or '.join(STATEMENT_TYPES)})"
        )
    return doc


def _subject_digests(statement: Mapping[str, Any]) -> list[str]:
    subjects = statement.get("subject")
    found: list[str] = []
    for subject in subjects if isinstance(subjects, list) else []:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if isinstance(value, str):
            found.append(value.lower())
    return found


def _get(document: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(part)
    return document


def builder_id(predicate: Any) -> str | None:
    """The SLSA builder id of a provenance predicate (v1, else v0.2)."""
    found = _get(predicate, "runDetails", "builder", "id") or _get(predicate, "builder", "id")
    return found if isinstance(found, str) else None


def _uris(predicate: Any) -> Iterator[str]:
    definition = _get(predicate, "buildDefinition")
    external = _get(definition, "externalParameters")
    for value in (
        _get(external, "workflow", "repository"),
        _get(external, "source"),
        _get(external, "source", "uri"),
        _get(predicate, "invocation", "configSource", "uri"),
    ):
        if isinstance(value, str):
            yield value
    for listing in (_get(definition, "resolvedDependencies"), _get(predicate, "materials")):
        for item in listing if isinstance(listing, list) else []:
            uri = item.get("uri") if isinstance(item, dict) else None
            if isinstance(uri, str):
                yield uri


def normalize_repository(uri: str) -> str:
    """A repository URI without ``git+``, ``@ref``, ``.git`` or a trailing slash."""
    text = uri.strip()
    text = text.removeprefix("git+")
    scheme, sep, rest = text.partition("://")
    if sep:
        text = scheme.lower() + sep + rest.split("@", 1)[0]
    text = text.rstrip("/").removesuffix(".git")
    return text


def source_repositories(predicate: Any) -> list[str]:
    """The source repositories a provenance predicate names, normalized, in order."""
    seen: list[str] = []
    for uri in _uris(predicate):
        normal = normalize_repository(uri)
        if normal not in seen:
            seen.append(normal)
    return seen


def _predicate_problem(statement: Mapping[str, Any], checks: PredicateChecks) -> str | None:
    predicate = statement.get("predicate")
    kind = statement.get("predicateType")
    if checks.predicate_type is not None and kind != checks.predicate_type:
        return f"its predicate type is {str(kind)[:120]!r}, not {checks.predicate_type!r}"
    if checks.builder_id is not None:
        found = builder_id(predicate)
        if found != checks.builder_id:
            shown = repr(found[:200]) if found is not None else "not stated"
            return f"its builder id is {shown}, not {checks.builder_id!r}"
    if checks.source_repository is not None:
        expected = normalize_repository(checks.source_repository)
        found_repos = source_repositories(predicate)
        if expected not in found_repos:
            shown = ", ".join(found_repos[:3])[:200] or "none"
            return f"it names source repository {shown}, not {checks.source_repository}"
    return None


def check_attestation(
    raw_bundle: bytes,
    key: SignatureVerifier,
    digest: str,
    where: str,
    checks: PredicateChecks = PredicateChecks(),
) -> Outcome:
    """Passed when the bundle's DSSE envelope is signed by ``key`` and carries an in-toto
    statement about ``digest`` whose predicate passes ``checks``."""
    try:
        bundle = read_bundle(raw_bundle, where)
    except UnusableEvidence as exc:
        return Outcome.failed(f"{exc}; {_NO_EVIDENCE}")
    envelope = bundle.dsse_envelope
    if envelope is None:
        return Outcome.failed(
            f"the bundle {where} holds a message signature, not an attestation (a DSSE "
            f"envelope); {_NO_EVIDENCE}"
        )
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        return Outcome.failed(
            f"the attestation {where} has payload type {envelope.payload_type[:80]!r}, not "
            f"{INTOTO_PAYLOAD_TYPE}; {_NO_EVIDENCE}"
        )
    if isinstance(key, KeylessTrust):
        bundle_checked = _keyless_bundle(raw_bundle, key, where)
        if isinstance(bundle_checked, str):
            return Outcome.failed(f"{bundle_checked}; {_NO_EVIDENCE}")
        try:
            Verifier(trusted_root=key.trusted_root).verify_dsse(bundle_checked, key.policy)
        except SigstoreError as exc:
            return Outcome.failed(
                f"the attestation {where} does not verify {key.describe()}: "
                f"{_sigstore_reason(exc)}; {_NO_EVIDENCE}"
            )
    else:
        encoded = pae(envelope.payload_type, envelope.payload)
        if not any(_verify_message(key.key, s.sig, encoded) for s in envelope.signatures):
            return Outcome.failed(
                f"the attestation {where} is not signed by the key {key.name}: another key "
                f"signed it, or its statement was changed; {_NO_EVIDENCE}"
            )
    try:
        statement = _statement(envelope.payload, where)
    except UnusableEvidence as exc:
        return Outcome.failed(f"{exc}; {_NO_EVIDENCE}")
    subjects = _subject_digests(statement)
    if _hex_digest(digest) not in subjects:
        named = ", ".join(f"sha256:{d[:12]}" for d in subjects[:3]) or "no SHA-256 digest"
        return Outcome.failed(
            f"the attestation {where} is about {named}, not the artifact's "
            f"{short_digest(digest)}; {_NO_EVIDENCE}"
        )
    problem = _predicate_problem(statement, checks)
    if problem is not None:
        return Outcome.failed(f"the attestation {where} is refused: {problem}; {_NO_EVIDENCE}")
    kind = str(statement.get("predicateType", "no predicate type"))[:120]
    checked = [
        label
        for label, value in (
            ("builder id", checks.builder_id),
            ("source repository", checks.source_repository),
        )
        if value is not None
    ]
    also = f", {' and '.join(checked)} as required" if checked else ""
    return Outcome.passed(
        f"{short_digest(digest)} attested ({kind}{also}): bundle {where} verified {describe(key)}"
    )


__all__ = [
    "IDENTITY_KEY",
    "INTOTO_PAYLOAD_TYPE",
    "ISSUER_KEY",
    "STATEMENT_TYPES",
    "TRUSTED_ROOT_KEY",
    "KeylessTrust",
    "PredicateChecks",
    "SignatureVerifier",
    "UnusableEvidence",
    "VerificationKey",
    "builder_id",
    "check_attestation",
    "check_signature",
    "describe",
    "load_key",
    "load_keyless",
    "normalize_repository",
    "pae",
    "read_bundle",
    "source_repositories",
]
