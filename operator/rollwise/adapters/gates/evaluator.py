"""``GateEvaluator``: the ModelRelease gates a reconcile pass observes, as the core's
``GateResult`` observations.

``evaluate(namespace, spec, now, required)`` returns one result per gate that applies, in this
order: ``artifact-digest`` (always), ``sbom`` (when ``spec.gates.sbom`` is set or the cluster
policy requires it: ``required``), ``policy-digest`` (likewise with ``spec.policyDigest``),
``model-card``, ``security-decision``, ``signature`` and ``attestation`` (likewise),
``revalidate-by`` (with ``spec.revalidateBy``) and ``freeze-window`` (always). A gate the
cluster policy requires but the spec does not configure fails, naming the field to set.
Evidence is read only where the operator's evidence policy allows (``access``): a URL or path
outside it fails its gate without being read.

Each gate's check lives in its own module (``digest``, ``sbom``, ``policy``, ``evidence``,
``signature``, ``freeze``); this class reads the evidence, caches the expensive checks and
never raises: a failure to check becomes Pending with the error in the message, so a gate is
never Passed without evidence.

Caching, per process:

* an artifact digest per (URI, expected digest, MLflow registry): a match is kept for the
  process's life; a mismatch or a failure to check is kept for ``retry_ttl`` seconds, then
  checked again (so a 10 GiB artifact is not hashed on every pass, and a fixed one is seen);
* an SBOM from a ConfigMap per (ConfigMap, key, resourceVersion, maxSeverity): the verdict on
  one content never changes; an SBOM from a URL per (URL, maxSeverity) like an artifact;
* a document (model card, security decision, Sigstore bundle) per (ConfigMap, key,
  resourceVersion) or URL, and what else its verdict depends on (the release's digest, the
  verification key's ConfigMap resourceVersion): a Passed verdict for the process's life, any
  other for ``retry_ttl`` seconds;
* the policy snapshot, the freeze windows and a verification key's ConfigMap are read on every
  call (one small GET each).

``checked_at`` is when the gate's current verdict (status and message) was first reached for
the release (namespace, model, version): an unchanged verdict keeps its time, so the status
the reconcile writes does not change on every pass.

Synchronous, thread-safe: the runtime calls it through ``asyncio.to_thread``; two passes that
need the same artifact digest at once compute it once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from rollwise.adapters.configmaps import ConfigMaps, resource_version
from rollwise.adapters.errors import AdapterError
from rollwise.adapters.gates.access import EvidenceAccess
from rollwise.adapters.gates.digest import ArtifactChecker
from rollwise.adapters.gates.evidence import (
    check_model_card,
    check_revalidation,
    check_security_decision,
)
from rollwise.adapters.gates.fetch import (
    Budget,
    EvidenceError,
    EvidenceForbidden,
    EvidenceTooLarge,
    EvidenceUnavailable,
    http_get_bytes,
    read_file,
)
from rollwise.adapters.gates.freeze import (
    WINDOWS_KEY,
    FreezeVerdict,
    InvalidWindow,
    evaluate_windows,
    parse_windows,
)
from rollwise.adapters.gates.outcome import Outcome, short_digest
from rollwise.adapters.gates.policy import check_policy
from rollwise.adapters.gates.rego import Bundle, decision_input
from rollwise.adapters.gates.rego import judge as judge_policy
from rollwise.adapters.gates.rego_bundle import BundleError, BundleFetcher, bundle_refs
from rollwise.adapters.gates.sbom import check_document, configmap_value
from rollwise.adapters.gates.signature import (
    PredicateChecks,
    SignatureVerifier,
    UnusableEvidence,
    check_attestation,
    check_signature,
    load_key,
    load_keyless,
)
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.registry.mlflow import MLflowRegistry
from rollwise.core.modelrelease.observations import (
    GATE_ARTIFACT,
    GATE_ATTESTATION,
    GATE_FREEZE,
    GATE_MODEL_CARD,
    GATE_POLICY,
    GATE_POLICY_ACCEPT,
    GATE_POLICY_CANARY,
    GATE_POLICY_PROMOTE,
    GATE_REVALIDATE,
    GATE_SBOM,
    GATE_SECURITY,
    GATE_SIGNATURE,
    Approval,
    GateResult,
)
from rollwise.core.modelrelease.spec import MSG_SBOM_SOURCE
from rollwise.core.modelrelease.status import GateStatus, ModelReleaseStatus, Stage
from rollwise.core.spec_release import (
    AttestationSource,
    ConfigMapKeyRef,
    FreezeWindow,
    ModelCardSource,
    ModelReleaseSpec,
    SBOMSource,
    SignatureSource,
)
from rollwise.core.spec_release import SignatureVerifier as VerifierSpec
from rollwise.core.status_model import format_time

#: Largest artifact whose digest the operator computes (10 GiB).
DEFAULT_MAX_ARTIFACT_BYTES = 10 * 1024**3
#: Seconds one artifact download or hash may take.
DEFAULT_ARTIFACT_TIMEOUT = 300.0
#: Largest SBOM document read (32 MiB) and seconds its download may take.
DEFAULT_MAX_SBOM_BYTES = 32 * 1024**2
DEFAULT_SBOM_TIMEOUT = 30.0
#: Seconds a check that did not pass is trusted before it is made again.
DEFAULT_RETRY_TTL = 60.0
#: Entries kept per cache (oldest dropped first).
MAX_CACHE_ENTRIES = 1024
#: The registry ``models:/`` artifacts are read from when the release names none.
DEFAULT_REGISTRY = "default"

CacheKey = tuple[Hashable, ...]


class _Cache:
    """Outcomes by key: a Passed one (or any, with ``forever``) stays; others expire."""

    def __init__(self, clock: Callable[[], float], ttl: float) -> None:
        self.clock = clock
        self.ttl = ttl
        self._entries: OrderedDict[CacheKey, tuple[Outcome, float, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[CacheKey, threading.Lock] = {}

    def get(self, key: CacheKey) -> Outcome | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            outcome, stored, forever = entry
            if forever or outcome.status is GateStatus.PASSED or self.clock() - stored < self.ttl:
                self._entries.move_to_end(key)
                return outcome
            del self._entries[key]
            return None

    def put(self, key: CacheKey, outcome: Outcome, *, forever: bool = False) -> None:
        with self._lock:
            self._entries[key] = (outcome, self.clock(), forever)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_CACHE_ENTRIES:
                self._entries.popitem(last=False)

    def key_lock(self, key: CacheKey) -> threading.Lock:
        with self._lock:
            if len(self._key_locks) > MAX_CACHE_ENTRIES:
                self._key_locks = {k: v for k, v in self._key_locks.items() if v.locked()}
            return self._key_locks.setdefault(key, threading.Lock())

    def compute(
        self, key: CacheKey, check: Callable[[], Outcome], *, forever: bool = False
    ) -> Outcome:
        """The cached outcome for ``key``, else ``check()`` (once at a time per key)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        with self.key_lock(key):
            cached = self.get(key)
            if cached is not None:
                return cached
            outcome = check()
            self.put(key, outcome, forever=forever)
            return outcome


def _error_outcome(exc: Exception) -> Outcome:
    if isinstance(exc, AdapterError):
        return Outcome.pending(f"could not check: {exc.message}")
    return Outcome.pending(f"could not check: {type(exc).__name__}: {exc}")


def _guarded(check: Callable[[], Outcome]) -> Outcome:
    try:
        return check()
    except Exception as exc:  # the evaluator never raises: an error is "could not check"
        return _error_outcome(exc)


class GateEvaluator:
    """Evaluates the gates of ModelReleases (see the module doc)."""

    def __init__(
        self,
        kube: KubeAPI,
        *,
        policy_configmap: tuple[str, str] | None,
        freeze_configmap: tuple[str, str] | None,
        access: EvidenceAccess | None = None,
        registries: dict[str, MLflowRegistry] | None = None,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        artifact_timeout: float = DEFAULT_ARTIFACT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        retry_ttl: float = DEFAULT_RETRY_TTL,
        max_sbom_bytes: int = DEFAULT_MAX_SBOM_BYTES,
        sbom_timeout: float = DEFAULT_SBOM_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        """``policy_configmap``/``freeze_configmap``: (namespace, name) of the cluster's policy
        snapshot and freeze windows (None: not configured). ``access``: the evidence policy
        (None: nothing may be read). ``registries``: the MLflow registries of the operator's
        settings, by name. ``clock``: monotonic seconds, for the caches' ``retry_ttl``."""
        self.configmaps = ConfigMaps(kube)
        self.policy_configmap = policy_configmap
        self.freeze_configmap = freeze_configmap
        self.session = session or requests.Session()
        self.max_sbom_bytes = max_sbom_bytes
        self.sbom_timeout = sbom_timeout
        self.access = access or EvidenceAccess()
        self.artifacts = ArtifactChecker(
            max_bytes=max_artifact_bytes,
            timeout=artifact_timeout,
            access=self.access,
            registries=registries,
            session=self.session,
        )
        self._artifact_cache = _Cache(clock, retry_ttl)
        self._sbom_cache = _Cache(clock, retry_ttl)
        self._document_cache = _Cache(clock, retry_ttl)
        self.bundles = BundleFetcher(self.session)
        self._verdicts: OrderedDict[CacheKey, GateResult] = OrderedDict()
        self._verdicts_lock = threading.Lock()
        # Keyless verifiers by ConfigMap content: a trusted root is parsed once per version.
        self._verifiers: OrderedDict[CacheKey, SignatureVerifier] = OrderedDict()

    # -- the interface -----------------------------------------------------------------------

    def evaluate(
        self,
        namespace: str,
        spec: ModelReleaseSpec,
        now: datetime,
        required: tuple[str, ...] = (),
    ) -> tuple[GateResult, ...]:
        """One ``GateResult`` per gate that applies to ``spec`` (order: module doc);
        ``required``: the gates the cluster policy requires of this release."""
        checks: list[tuple[str, Callable[[], Outcome]]] = [
            (GATE_ARTIFACT, lambda: self.check_artifact(spec))
        ]
        sbom = spec.gates.sbom
        if sbom is not None:
            checks.append((GATE_SBOM, lambda: self.check_sbom(namespace, sbom)))
        elif GATE_SBOM in required:
            checks.append((GATE_SBOM, lambda: _required(GATE_SBOM, "spec.gates.sbom")))
        policy = spec.policy_digest
        if policy is not None:
            checks.append((GATE_POLICY, lambda: self.check_policy(policy)))
        elif GATE_POLICY in required:
            checks.append((GATE_POLICY, lambda: _required(GATE_POLICY, "spec.policyDigest")))
        card = spec.gates.model_card
        if card is not None:
            checks.append((GATE_MODEL_CARD, lambda: self.check_model_card(namespace, card)))
        elif GATE_MODEL_CARD in required:
            checks.append(
                (GATE_MODEL_CARD, lambda: _required(GATE_MODEL_CARD, "spec.gates.modelCard"))
            )
        if spec.gates.security_decision is not None or GATE_SECURITY in required:
            checks.append(
                (GATE_SECURITY, lambda: self.check_security_decision(namespace, spec, now))
            )
        signature = spec.gates.signature
        if signature is not None:
            checks.append(
                (GATE_SIGNATURE, lambda: self.check_signature(namespace, spec, signature))
            )
        elif GATE_SIGNATURE in required:
            checks.append(
                (GATE_SIGNATURE, lambda: _required(GATE_SIGNATURE, "spec.gates.signature"))
            )
        attestation = spec.gates.attestation
        if attestation is not None:
            checks.append(
                (GATE_ATTESTATION, lambda: self.check_attestation(namespace, spec, attestation))
            )
        elif GATE_ATTESTATION in required:
            checks.append(
                (GATE_ATTESTATION, lambda: _required(GATE_ATTESTATION, "spec.gates.attestation"))
            )
        if spec.revalidate_by is not None:
            checks.append((GATE_REVALIDATE, lambda: check_revalidation(spec, now)))
        checks.append((GATE_FREEZE, lambda: self.check_freeze(spec.gates.freeze_windows, now)))
        release = (namespace, spec.model, spec.version)
        return tuple(self._result(release, name, _guarded(check), now) for name, check in checks)

    # -- the gates ---------------------------------------------------------------------------

    def check_artifact(self, spec: ModelReleaseSpec) -> Outcome:
        uri, expected = spec.artifact.uri, spec.artifact.digest
        registry: str | None = None
        if urlsplit(uri).scheme.lower() == "models":
            mlflow = spec.alias.store.mlflow if spec.alias.store is not None else None
            registry = mlflow.registry if mlflow is not None else DEFAULT_REGISTRY
        return self._artifact_cache.compute(
            (uri, expected, registry),
            lambda: _guarded(lambda: self.artifacts.check(uri, expected, registry)),
        )

    def check_sbom(self, namespace: str, source: SBOMSource) -> Outcome:
        if (source.config_map_key is None) == (source.url is None):
            return Outcome.failed(MSG_SBOM_SOURCE)
        severity = source.max_severity
        if source.config_map_key is not None:
            ref = source.config_map_key
            where = f"ConfigMap {namespace}/{ref.name} key {ref.key}"
            configmap = self.configmaps.get(namespace, ref.name)
            if configmap is None:
                return Outcome.pending(f"SBOM {where}: the ConfigMap does not exist")
            raw = configmap_value(configmap, ref.key)
            if raw is None:
                return Outcome.pending(f"SBOM {where}: the ConfigMap has no such key")
            key: CacheKey = ("configmap", namespace, ref.name, ref.key, resource_version(configmap))
            return self._sbom_cache.compute(
                (*key, severity), lambda: check_document(raw, severity, where), forever=True
            )
        url = str(source.url)
        return self._sbom_cache.compute(
            ("url", url, severity), lambda: _guarded(lambda: self._sbom_from_url(url, severity))
        )

    def _sbom_from_url(self, url: str, severity: str) -> Outcome:
        raw = self._read_url(url, f"SBOM {url}", "the SBOM", self.max_sbom_bytes)
        return raw if isinstance(raw, Outcome) else check_document(raw, severity, url)

    def _read_url(self, url: str, what: str, noun: str, max_bytes: int) -> bytes | Outcome:
        """The bytes at ``url`` (http(s):// or file://) within the evidence policy and the
        bounds, or the gate's outcome when they cannot be had."""
        budget = Budget(what, max_bytes, self.sbom_timeout)
        parts = urlsplit(url)
        try:
            if parts.scheme in ("http", "https"):
                self.access.check_url(url, what)

                def redirect(target: str) -> None:
                    self.access.check_url(target, f"{what}: a redirect")

                return http_get_bytes(self.session, url, budget, check=redirect)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = self.access.check_path(Path(unquote(parts.path)), what)
                chunks: list[bytes] = []
                read_file(path, chunks.append, budget)
                return b"".join(chunks)
            return Outcome.pending(
                f"{what}: scheme {parts.scheme or '(none)'} is not supported "
                "(use http(s):// or a ConfigMap)"
            )
        except EvidenceForbidden as exc:
            return Outcome.failed(f"{exc}: not read (no evidence, no promotion)")
        except EvidenceTooLarge as exc:
            return Outcome.failed(f"{exc}; no evidence, no promotion")
        except EvidenceUnavailable as exc:
            return Outcome.pending(f"could not read {noun}: {exc}")

    def _document(
        self,
        namespace: str,
        *,
        ref: ConfigMapKeyRef | None,
        url: str | None,
        label: str,
        judge: Callable[[bytes, str], Outcome],
        subject: CacheKey = (),
    ) -> Outcome:
        """``judge(document, where)`` on the document of a ConfigMap key or a URL (exactly one
        of ``ref`` and ``url``); the verdict on a ConfigMap's content is kept per
        resourceVersion (and ``subject``, what else the verdict depends on): a Passed one for the
        process's life, any other for the retry TTL; on a URL likewise."""
        if ref is not None and url is None:
            where = f"ConfigMap {namespace}/{ref.name} key {ref.key}"
            configmap = self.configmaps.get(namespace, ref.name)
            if configmap is None:
                return Outcome.pending(f"{label} {where}: the ConfigMap does not exist")
            raw = configmap_value(configmap, ref.key)
            if raw is None:
                return Outcome.pending(f"{label} {where}: the ConfigMap has no such key")
            version = resource_version(configmap)
            key: CacheKey = (label, "configmap", namespace, ref.name, ref.key, version, *subject)
            return self._document_cache.compute(key, lambda: judge(raw, where))
        if url is not None and ref is None:

            def from_url() -> Outcome:
                read = self._read_url(url, f"{label} {url}", f"the {label}", self.max_sbom_bytes)
                return read if isinstance(read, Outcome) else judge(read, url)

            return self._document_cache.compute(
                (label, "url", url, *subject), lambda: _guarded(from_url)
            )
        return Outcome.failed(f"{label}: needs exactly one of configMapKeyRef or url")

    def check_model_card(self, namespace: str, source: ModelCardSource) -> Outcome:
        required = tuple(source.required_fields)
        return self._document(
            namespace,
            ref=source.config_map_key,
            url=source.url,
            label="model card",
            judge=lambda raw, where: check_model_card(raw, required, where),
            subject=required,
        )

    def check_security_decision(
        self, namespace: str, spec: ModelReleaseSpec, now: datetime
    ) -> Outcome:
        source = spec.gates.security_decision
        if source is None:
            return _required(GATE_SECURITY, "spec.gates.securityDecision")
        # The verdict depends on the release (the document's subject must be its own); one
        # that did not pass (a decidedAt in the future) is checked again after the retry TTL.
        return self._document(
            namespace,
            ref=source.config_map_key,
            url=source.url,
            label="security decision",
            judge=lambda raw, where: check_security_decision(raw, spec, where, now),
            subject=(spec.model, spec.version, spec.artifact.digest),
        )

    def _verifier(
        self, namespace: str, spec: VerifierSpec
    ) -> tuple[SignatureVerifier, CacheKey] | Outcome:
        """The verifier (a public key, or a keyless trusted root with its identity and issuer)
        and what identifies its content (the ConfigMap's resourceVersion), or the gate's
        outcome when it cannot be had: a missing or unusable verifier fails the gate (nothing
        to verify against)."""
        if spec.keyless is not None:
            name = spec.keyless.config_map_ref.name
            where = f"ConfigMap {namespace}/{name}"
            configmap = self.configmaps.get(namespace, name)
            if configmap is None:
                return Outcome.failed(
                    f"the keyless verifier {where} cannot be read: the ConfigMap does not "
                    "exist; no evidence, no promotion"
                )
            version: CacheKey = ("keyless", namespace, name, resource_version(configmap))
            with self._verdicts_lock:
                cached = self._verifiers.get(version)
            if cached is not None:
                return cached, version
            data = configmap.get("data") or {}
            try:
                trust = load_keyless(data if isinstance(data, dict) else {}, where)
            except UnusableEvidence as exc:
                return Outcome.failed(f"{exc}; no evidence, no promotion")
            with self._verdicts_lock:
                self._verifiers[version] = trust
                while len(self._verifiers) > MAX_CACHE_ENTRIES:
                    self._verifiers.popitem(last=False)
            return trust, version
        if spec.public_key is None:
            return Outcome.failed(
                "the verifier names neither publicKey nor keyless; no evidence, no promotion"
            )
        ref = spec.public_key.config_map_key
        where = f"ConfigMap {namespace}/{ref.name} key {ref.key}"
        configmap = self.configmaps.get(namespace, ref.name)
        if configmap is None:
            return Outcome.failed(
                f"the verification key {where} cannot be read: the ConfigMap does not exist; "
                "no evidence, no promotion"
            )
        raw = configmap_value(configmap, ref.key)
        if raw is None:
            return Outcome.failed(
                f"the verification key {where} cannot be read: the ConfigMap has no such key; "
                "no evidence, no promotion"
            )
        try:
            key = load_key(raw, where)
        except UnusableEvidence as exc:
            return Outcome.failed(f"{exc}; no evidence, no promotion")
        return key, ("key", namespace, ref.name, ref.key, resource_version(configmap))

    def _signed_document(
        self,
        namespace: str,
        source: SignatureSource | AttestationSource,
        spec: ModelReleaseSpec,
        *,
        label: str,
        judge: Callable[[bytes, SignatureVerifier, str], Outcome],
        subject: CacheKey,
    ) -> Outcome:
        found = self._verifier(namespace, source.verifier)
        if isinstance(found, Outcome):
            return found
        key, key_version = found
        outcome = self._document(
            namespace,
            ref=source.config_map_key,
            url=source.url,
            label=label,
            judge=lambda raw, where: judge(raw, key, where),
            subject=(*key_version, spec.artifact.digest, *subject),
        )
        if outcome.status is GateStatus.PENDING and outcome.message.startswith(label):
            # The bundle's ConfigMap or key is missing: no signature is a failed gate.
            return Outcome.failed(f"{outcome.message}; no evidence, no promotion")
        return outcome

    def check_signature(
        self, namespace: str, spec: ModelReleaseSpec, source: SignatureSource
    ) -> Outcome:
        return self._signed_document(
            namespace,
            source,
            spec,
            label="signature bundle",
            judge=lambda raw, key, where: check_signature(raw, key, spec.artifact.digest, where),
            subject=(),
        )

    def check_attestation(
        self, namespace: str, spec: ModelReleaseSpec, source: AttestationSource
    ) -> Outcome:
        checks = PredicateChecks(
            predicate_type=source.predicate_type,
            builder_id=source.builder_id,
            source_repository=source.source_repository,
        )
        return self._signed_document(
            namespace,
            source,
            spec,
            label="attestation bundle",
            judge=lambda raw, key, where: check_attestation(
                raw, key, spec.artifact.digest, where, checks
            ),
            subject=(checks.predicate_type, checks.builder_id, checks.source_repository),
        )

    def evaluate_policies(
        self,
        namespace: str,
        name: str,
        spec: ModelReleaseSpec,
        *,
        status: ModelReleaseStatus | None,
        gates: Sequence[GateResult],
        approvals: Sequence[Approval],
        now: datetime,
    ) -> tuple[GateResult, ...]:
        """The Rego decision points (``policy-accept``, ``policy-promote``, ``policy-canary``)
        of a release bound to the policy snapshot, each evaluated on its input document
        (``rego``). The bundle is read once for all; one whose digest is not
        ``spec.policyDigest`` is not evaluated. The canary point is evaluated only while the
        canary runs in Staging (Pending before; after Staging its last verdict stands)."""
        release = (namespace, spec.model, spec.version)
        outcomes = _guarded_many(
            lambda: self._policy_outcomes(
                namespace, name, spec, status=status, gates=gates, approvals=approvals, now=now
            )
        )
        return tuple(
            self._result(release, gate, outcome, now)
            for gate, outcome in zip(
                (GATE_POLICY_ACCEPT, GATE_POLICY_PROMOTE, GATE_POLICY_CANARY), outcomes, strict=True
            )
        )

    def _policy_outcomes(
        self,
        namespace: str,
        name: str,
        spec: ModelReleaseSpec,
        *,
        status: ModelReleaseStatus | None,
        gates: Sequence[GateResult],
        approvals: Sequence[Approval],
        now: datetime,
    ) -> tuple[Outcome, Outcome, Outcome]:
        if self.policy_configmap is None:
            pending = Outcome.pending(
                "the release is bound to the policy snapshot but the operator has no policy "
                "snapshot ConfigMap configured (ROLLWISE_POLICY_CONFIGMAP)"
            )
            return pending, pending, pending
        cm_namespace, cm_name = self.policy_configmap
        where = f"{cm_namespace}/{cm_name}"
        configmap = self.configmaps.get(cm_namespace, cm_name)
        if configmap is None:
            missing = Outcome.pending(f"the policy snapshot ConfigMap {where} does not exist")
            return missing, missing, missing
        data = configmap.get("data") or {}
        bundle = Bundle.from_data(data if isinstance(data, dict) else {})
        if spec.policy_digest is not None and bundle.digest != spec.policy_digest:
            unbound = Outcome.failed(
                f"policy bundle {where} is {short_digest(bundle.digest)}, not the bound "
                f"{short_digest(spec.policy_digest)}: not evaluated (no evidence, no promotion)"
            )
            return unbound, unbound, unbound
        try:
            bundle = self._with_fetched(bundle, data if isinstance(data, dict) else {})
        except BundleError as exc:
            refused = Outcome.failed(
                f"policy bundle {where}: {exc}: not evaluated (no evidence, no promotion)"
            )
            return refused, refused, refused
        except EvidenceError as exc:
            unread = Outcome.pending(f"policy bundle {where}: {exc}")
            return unread, unread, unread
        verdicts = []
        for point in ("accept", "promote", "canary"):
            if point == "canary" and not _canary_judged(status):
                verdicts.append(_canary_standing(status))
                continue
            document = decision_input(
                point,
                namespace=namespace,
                name=name,
                spec=spec,
                status=status,
                gates=gates,
                approvals=approvals,
                now=now,
            )
            verdicts.append(judge_policy(bundle, point, document, where))
        return verdicts[0], verdicts[1], verdicts[2]

    def _with_fetched(self, bundle: Bundle, data: Mapping[str, Any]) -> Bundle:
        """``bundle`` with the modules and data of the OPA bundles its snapshot names by URL
        and digest (``rego_bundle``); the digest stays the snapshot's, which pins them."""
        strings = {str(k): v for k, v in data.items() if isinstance(v, str)}
        refs = bundle_refs(strings)
        if not refs:
            return bundle
        modules, documents = list(bundle.modules), list(bundle.data)
        for ref in refs:
            unpacked = self.bundles.fetch(ref)
            modules.extend(unpacked.modules)
            documents.extend(unpacked.data)
        return Bundle(modules=tuple(modules), data=tuple(documents), digest=bundle.digest)

    def check_policy(self, expected: str) -> Outcome:
        if self.policy_configmap is None:
            return Outcome.pending(
                "spec.policyDigest is set but the operator has no policy snapshot ConfigMap "
                "configured (ROLLWISE_POLICY_CONFIGMAP)"
            )
        namespace, name = self.policy_configmap
        return check_policy(self.configmaps.get(namespace, name), expected, f"{namespace}/{name}")

    def check_freeze(self, spec_windows: list[FreezeWindow] | None, now: datetime) -> Outcome:
        windows = list(spec_windows or [])
        problems: list[str] = []
        unreadable: str | None = None
        if self.freeze_configmap is not None:
            namespace, name = self.freeze_configmap
            source = f"freeze ConfigMap {namespace}/{name}"
            try:
                cluster = self._cluster_windows(namespace, name, source)
            except InvalidWindow as exc:
                problems.append(str(exc))
            except AdapterError as exc:
                unreadable = f"could not read the {source}: {exc.message}"
            else:
                if cluster is None:
                    unreadable = f"the {source} does not exist"
                else:
                    windows += cluster
        verdict = evaluate_windows(windows, now)
        verdict = FreezeVerdict(verdict.open, (*problems, *verdict.problems))
        if verdict.open or verdict.problems:
            # The windows are sorted latest end first: the gate opens when that one closes.
            ends = verdict.open[0].end if verdict.open and not verdict.problems else None
            return Outcome.failed(_freeze_message(verdict), recheck_at=ends)
        if unreadable is not None:
            return Outcome.pending(unreadable)
        counted = f" ({len(windows)} checked)" if windows else ""
        return Outcome.passed(f"no freeze window open{counted}")

    def _cluster_windows(self, namespace: str, name: str, source: str) -> list[FreezeWindow] | None:
        """The cluster's windows (None: the ConfigMap does not exist)."""
        configmap = self.configmaps.get(namespace, name)
        if configmap is None:
            return None
        raw = (configmap.get("data") or {}).get(WINDOWS_KEY)
        if raw is None:
            return []
        if not isinstance(raw, str):
            raise InvalidWindow(f"{source}: {WINDOWS_KEY} is not a string")
        return parse_windows(raw, source)

    # -- results -----------------------------------------------------------------------------

    def _result(self, release: CacheKey, gate: str, outcome: Outcome, now: datetime) -> GateResult:
        key = (*release, gate)
        with self._verdicts_lock:
            last = self._verdicts.get(key)
            if last is not None and (last.status, last.message) == (
                outcome.status,
                outcome.message,
            ):
                self._verdicts.move_to_end(key)
                return last
            result = GateResult(
                name=gate,
                status=outcome.status,
                message=outcome.message,
                checked_at=now.astimezone(UTC),
                recheck_at=outcome.recheck_at,
            )
            self._verdicts[key] = result
            while len(self._verdicts) > MAX_CACHE_ENTRIES * 4:
                self._verdicts.popitem(last=False)
            return result


def _guarded_many(
    check: Callable[[], tuple[Outcome, Outcome, Outcome]],
) -> tuple[Outcome, Outcome, Outcome]:
    try:
        return check()
    except Exception as exc:  # the evaluator never raises: an error is "could not check"
        failed = _error_outcome(exc)
        return failed, failed, failed


def _canary_judged(status: ModelReleaseStatus | None) -> bool:
    """Whether the canary point judges the release now: in Staging, its canary started and
    not failed (running, or passed and waiting for its promotion), on its verdicts so far."""
    if status is None or status.stage is not Stage.STAGING or status.serving is None:
        return False
    return status.serving.failure is None


def _canary_standing(status: ModelReleaseStatus | None) -> Outcome:
    """The canary point's verdict when it does not judge: Pending before the canary starts;
    after Staging, the last Passed or Failed one recorded stands (a policy edited later does
    not judge a canary that has ended; nothing waits on the gate then)."""
    recorded = next(
        (g for g in (status.gates if status is not None else []) if g.name == GATE_POLICY_CANARY),
        None,
    )
    if recorded is not None and recorded.status in (GateStatus.PASSED, GateStatus.FAILED):
        return Outcome(status=recorded.status, message=recorded.message)
    return Outcome.pending("evaluated while the canary runs in Staging")


def _required(gate: str, field_path: str) -> Outcome:
    return Outcome.failed(
        f"the cluster policy requires the {gate} gate of every release here: set {field_path} "
        "(no evidence, no promotion)"
    )


def _freeze_message(verdict: FreezeVerdict) -> str:
    parts: list[str] = []
    if verdict.open:
        first, *others = verdict.open
        parts.append(f"freeze window {first.name} is open until {format_time(first.end)}")
        if others:
            also = ", ".join(f"{w.name} until {format_time(w.end)}" for w in others)
            parts.append(f"also open: {also}")
    if verdict.problems:
        parts.append("invalid freeze window definitions: " + "; ".join(verdict.problems))
    return "; ".join(parts)


__all__ = [
    "DEFAULT_ARTIFACT_TIMEOUT",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "DEFAULT_MAX_SBOM_BYTES",
    "DEFAULT_REGISTRY",
    "DEFAULT_RETRY_TTL",
    "DEFAULT_SBOM_TIMEOUT",
    "GateEvaluator",
]
