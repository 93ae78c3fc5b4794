"""The operator's mutating admission webhook for ``modelreleases`` and ``rollouts``.

One kopf ``@kopf.on.mutate`` handler (id ``records``, CREATE and UPDATE of the main resource,
never ``/status``) hands each request to
:func:`rollwise.core.modelrelease.admission.admit` with the identity the API server authenticated
(``userInfo``) and either writes the answer through kopf's ``patch`` (the request annotations
removed, signed record annotations added) or refuses
the request with ``kopf.AdmissionError`` (HTTP 403) and the core's one-sentence message.

The webhook's ``failurePolicy`` is ``Fail``: kopf writes ``Fail`` for every handler not marked
``ignore_failures``, and the chart's own configuration says so too. A write kopf cannot answer
is refused, never let through unrecorded (and a record typed by hand is ignored anyway: it has
no valid signature).

The served configuration is either kopf's (``ROLLWISE_WEBHOOK_MANAGED=true``: kopf creates and
patches the ``MutatingWebhookConfiguration`` named ``rollwise.dev`` pointing at
``https://ROLLWISE_WEBHOOK_HOST:PORT``; kopf also creates an empty
``ValidatingWebhookConfiguration`` of that name) or installed by the Helm chart (``false``:
the operator only serves). The handler is registered ``persistent``: kopf keeps it in its
managed configuration when the operator stops, so ``Fail`` holds while it is down.

A second handler (id ``rollout-records``, CREATE and UPDATE of ``rollouts``, main resource
only) records overrides on Rollouts (:func:`rollwise.core.overrides.admit_overrides`: the
``rollwise.dev/override`` and ``rollwise.dev/confirm-override`` requests) and the approvals of
approval steps (:func:`rollwise.core.rollout.approvals.admit_approvals`: who changed the
template, the ``rollwise.dev/approve`` requests; a refused approval is also reported to the
``refusals`` sink, the Warning event ``ApprovalRefused``); the ModelRelease handler records
overrides too, after the core's governance decision. The Rollout handler's
``failurePolicy`` is ``Ignore`` (``ignore_failures``): records are signed, so a missed webhook
can only leave a request unrecorded (the reconcile ignores a raw request), never forge one,
while ``Fail`` would refuse every Rollout write, Argo CD syncs included, whenever the operator
is down.

A validating handler (id ``serving-gate``, CREATE and UPDATE of ``apps/v1`` Deployments and
KServe ``InferenceServices`` that carry the label ``rollwise.dev/model-version``) refuses to
serve a model version that is revoked, not Staging, Approved or Production, or bound to
another policy digest (:mod:`rollwise.core.modelrelease.serving_gate`, registered by
:mod:`rollwise.runtime.serving_gate`); it reads the namespace's ModelReleases and revocation
ledger. With the chart's configuration its
``failurePolicy`` is ``webhook.servingGate.failurePolicy`` (docs/gates.md weighs the choice);
with kopf's own configuration it is ``Fail``.

Certificates come from files (``ROLLWISE_WEBHOOK_CERT_FILE`` / ``_KEY_FILE``): kopf's own
self-signed certificate builder does not work with current OpenSSL releases.

The webhook signs records with the identity a request's ``userInfo`` names, so it must only ever
answer the API server: any pod could otherwise post an AdmissionReview claiming to be anyone. The
server therefore requires a TLS client certificate signed by ``ROLLWISE_WEBHOOK_CLIENT_CA_FILE``
(the API server presents one through its admission configuration, docs/security.md): a caller
without one never reaches a handler. With ``ROLLWISE_WEBHOOK_CLIENT_NAMES`` the certificate
must also name one of those identities, or the request is refused before anything is signed.

Boundary: this module reads the record key file and talks to kopf; all decisions are the
core's.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf

from rollwise import GROUP, MODELRELEASES, ROLLOUTS, VERSION
from rollwise.adapters.errors import AdapterError
from rollwise.adapters.objects import KubeCluster
from rollwise.adapters.releases import RELEASE_LABEL
from rollwise.core.events import Event
from rollwise.core.modelrelease.admission import admit
from rollwise.core.modelrelease.spec import parse_release_spec, release_content
from rollwise.core.observations import revision_of
from rollwise.core.overrides import GUARDED_LABEL, MODELRELEASE, OVERRIDES, ROLLOUT, admit_overrides
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.approvals import ApprovalRefusal, admit_approvals
from rollwise.core.rollout.overrides import admit_child_requests
from rollwise.core.signing import Keyring
from rollwise.runtime.serving_gate import (
    ServingReads,
    register_serving_gate,
)
from rollwise.runtime.settings import WEBHOOK_CONFIGURATION, Settings

PLURAL = MODELRELEASES
#: The handler id; the webhook is named ``records.rollwise.dev`` in kopf's configuration.
HANDLER_ID = "records"
#: The request path kopf serves the handler on (used by the chart's configuration).
WEBHOOK_PATH = f"/{HANDLER_ID}"
#: The Rollout handler: webhook ``rollout-records.rollwise.dev`` on ``/rollout-records``.
ROLLOUT_PLURAL = ROLLOUTS
ROLLOUT_HANDLER_ID = "rollout-records"
ROLLOUT_WEBHOOK_PATH = f"/{ROLLOUT_HANDLER_ID}"
#: The same handler for guarded Rollouts (``failurePolicy: Fail``), on ``/guarded-rollout-records``.
GUARDED_HANDLER_ID = "guarded-rollout-records"
GUARDED_WEBHOOK_PATH = f"/{GUARDED_HANDLER_ID}"
#: Shortest record key accepted, in bytes: a short key could be guessed.
MIN_KEY_BYTES = 16


class AdmissionSetupError(Exception):
    """The webhook cannot start: a missing or unusable key, certificate or setting."""


#: Where a refused approval of a Rollout is reported (the Warning event ``ApprovalRefused``):
#: given the Rollout's namespace, name and uid and the refusal.
RefusalSink = Callable[[str, str, str, ApprovalRefusal], None]


@dataclass(frozen=True)
class AdmissionConfig:
    """What the handler needs: the record key, which groups may approve as which role, the
    names a caller's client certificate must carry (empty: any the client CA signed), and
    where a refused approval of a Rollout is reported (None: only to the caller)."""

    key: bytes
    role_map: Mapping[str, tuple[str, ...]]
    client_names: tuple[str, ...] = ()
    refusals: RefusalSink | None = None


def peer_names(sslpeer: Mapping[str, Any] | None) -> set[str]:
    """The common names and DNS subject alternative names of a TLS peer certificate, as
    ``ssl.SSLSocket.getpeercert()`` describes it."""
    names: set[str] = set()
    for rdn in (sslpeer or {}).get("subject") or ():
        for attribute in rdn:
            if len(attribute) == 2 and attribute[0] == "commonName":
                names.add(str(attribute[1]))
    for kind, value in (sslpeer or {}).get("subjectAltName") or ():
        if kind == "DNS":
            names.add(str(value))
    return names


def check_caller(config: AdmissionConfig, sslpeer: Mapping[str, Any] | None) -> None:
    """Refuses (``kopf.AdmissionError``) a caller whose certificate names none of
    ``config.client_names``."""
    if not config.client_names:
        return
    if not peer_names(sslpeer) & set(config.client_names):
        raise kopf.AdmissionError(
            "the caller's client certificate is not one this webhook answers "
            "(ROLLWISE_WEBHOOK_CLIENT_NAMES)",
            code=403,
        )


def read_record_key(path: str | Path) -> bytes:
    """The record key in ``path`` (its content without surrounding white space)."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise AdmissionSetupError(f"cannot read the record key file {path}: {exc}") from None
    if len(key) < MIN_KEY_BYTES:
        raise AdmissionSetupError(
            f"the record key in {path} is shorter than {MIN_KEY_BYTES} bytes; "
            "use a long random value"
        )
    return key


def read_keyring(settings: Settings) -> Keyring | None:
    """The record key and the earlier keys still accepted (None: no key configured)."""
    if settings.record_key_file is None:
        return None
    return Keyring(
        read_record_key(settings.record_key_file),
        [read_record_key(path) for path in settings.record_previous_key_files],
    )


def load_admission(settings: Settings, refusals: RefusalSink | None = None) -> AdmissionConfig:
    """The handler's configuration from ``settings`` (reads the record key files)."""
    key = read_keyring(settings)
    if key is None:
        raise AdmissionSetupError("the webhook needs ROLLWISE_RECORD_KEY_FILE")
    return AdmissionConfig(
        key=key,
        role_map=dict(settings.role_groups),
        client_names=settings.webhook_client_names,
        refusals=refusals,
    )


def _annotations(body: Mapping[str, Any] | None) -> dict[str, str]:
    meta = (body or {}).get("metadata") or {}
    return {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}


def _version(body: Mapping[str, Any] | None) -> str | None:
    version = ((body or {}).get("spec") or {}).get("version")
    return version if isinstance(version, str) else None


def _content(body: Mapping[str, Any]) -> dict[str, str] | None:
    """What an approval of ``body`` is bound to (None: its spec cannot be read)."""
    spec = body.get("spec")
    parsed = parse_release_spec(spec) if isinstance(spec, Mapping) else None
    if parsed is None or isinstance(parsed, list):
        return None
    return release_content(parsed)


def decide(
    config: AdmissionConfig,
    *,
    operation: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    userinfo: Mapping[str, Any],
    now: datetime,
) -> dict[str, str | None]:
    """The annotations patch for one admission request; raises ``kopf.AdmissionError``."""
    meta = new.get("metadata") or {}
    old_meta = (old or {}).get("metadata") or {}
    answer = admit(
        operation=operation,
        old_annotations=_annotations(old),
        new_annotations=_annotations(new),
        spec_version=_version(new) or "",
        old_spec_version=_version(old),
        uid=str(old_meta.get("uid") or meta.get("uid") or ""),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        generate_name=str(meta.get("generateName") or ""),
        user=str(userinfo.get("username") or ""),
        groups=tuple(str(g) for g in (userinfo.get("groups") or ())),
        role_map=config.role_map,
        key=config.key,
        now=now,
        content=_content(new),
    )
    if not answer.allowed:
        raise kopf.AdmissionError(answer.message, code=403)
    overrides = _overrides(
        config,
        MODELRELEASE,
        operation=operation,
        old=old,
        new=new,
        target=_version(new) or "",
        userinfo=userinfo,
        now=now,
        last_seq=_status_int(old, "overridesSeq"),
    )
    return {**answer.patch, **overrides}


def _overrides(
    config: AdmissionConfig,
    kind: str,
    *,
    operation: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    target: str,
    userinfo: Mapping[str, Any],
    now: datetime,
    last_seq: int = 0,
) -> dict[str, str | None]:
    meta = new.get("metadata") or {}
    old_meta = (old or {}).get("metadata") or {}
    answer = admit_overrides(
        kind=kind,
        operation=operation,
        old_annotations=_annotations(old),
        new_annotations=_annotations(new),
        target=target,
        uid=str(old_meta.get("uid") or meta.get("uid") or ""),
        name=str(meta.get("name") or meta.get("generateName") or ""),
        user=str(userinfo.get("username") or ""),
        key=config.key,
        now=now,
        last_seq=last_seq,
    )
    if not answer.allowed:
        raise kopf.AdmissionError(answer.message, code=403)
    return dict(answer.patch)


def _status_int(body: Mapping[str, Any] | None, field_name: str) -> int:
    status = (body or {}).get("status")
    value = status.get(field_name) if isinstance(status, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _labels(body: Mapping[str, Any] | None) -> dict[str, str]:
    meta = (body or {}).get("metadata") or {}
    return {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}


def _release_of(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str | None:
    """The ModelRelease a Rollout is the child of (the label on the stored or the new one)."""
    return _labels(old).get(RELEASE_LABEL) or _labels(new).get(RELEASE_LABEL) or None


def decide_rollout(
    config: AdmissionConfig,
    *,
    operation: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    userinfo: Mapping[str, Any],
    now: datetime,
) -> dict[str, str | None]:
    """The annotations patch for one admission request on a Rollout: overrides (the target is
    the revision of the template the request would store) and, on a ModelRelease's child, the
    refusal of manual requests only the release may make."""
    release = _release_of(old, new)
    if release is not None:
        meta = new.get("metadata") or {}
        status = (old or {}).get("status")
        pause = status.get("pauseReason") if isinstance(status, Mapping) else None
        child = admit_child_requests(
            old_annotations=_annotations(old),
            new_annotations=_annotations(new),
            pause_reason=pause if isinstance(pause, str) else None,
            release=release,
            subject=f"{meta.get('namespace') or ''}/{meta.get('name') or ''}",
            key=config.key,
        )
        if not child.allowed:
            raise kopf.AdmissionError(child.message, code=403)
    revision = _revision(new)
    approvals = _approvals(
        config, operation=operation, old=old, new=new, userinfo=userinfo, now=now
    )
    overrides = _overrides(
        config,
        ROLLOUT,
        operation=operation,
        old=old,
        new=new,
        target=revision,
        userinfo=userinfo,
        now=now,
    )
    return {**approvals, **overrides}


def _revision(body: Mapping[str, Any] | None) -> str:
    template = ((body or {}).get("spec") or {}).get("template")
    return revision_of(template if isinstance(template, Mapping) else {})


def approval_steps(body: Mapping[str, Any] | None) -> dict[int, tuple[str, ...]]:
    """The approval steps of a Rollout's spec as written (index -> roles)."""
    strategy = ((body or {}).get("spec") or {}).get("strategy")
    canary = strategy.get("canary") if isinstance(strategy, Mapping) else None
    steps = canary.get("steps") if isinstance(canary, Mapping) else None
    found: dict[int, tuple[str, ...]] = {}
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        approval = step.get("approval") if isinstance(step, Mapping) else None
        roles = approval.get("roles") if isinstance(approval, Mapping) else None
        if isinstance(roles, list):
            found[index] = tuple(str(r) for r in roles)
    return found


def _approvals(
    config: AdmissionConfig,
    *,
    operation: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    userinfo: Mapping[str, Any],
    now: datetime,
) -> dict[str, str | None]:
    """The approval records' patch (approval steps), or the refusal, reported to
    ``config.refusals`` when it refuses an approval request."""
    meta = new.get("metadata") or {}
    old_meta = (old or {}).get("metadata") or {}
    uid = str(old_meta.get("uid") or meta.get("uid") or "")
    name = str(meta.get("name") or "")
    answer = admit_approvals(
        operation=operation,
        old_annotations=_annotations(old),
        new_annotations=_annotations(new),
        old_revision=_revision(old) if old is not None else None,
        revision=_revision(new),
        approval_steps=approval_steps(new),
        uid=uid,
        name=name,
        user=str(userinfo.get("username") or ""),
        groups=tuple(str(g) for g in (userinfo.get("groups") or ())),
        role_map=config.role_map,
        key=config.key,
        now=now,
    )
    if not answer.admission.allowed:
        if answer.refusal is not None and config.refusals is not None and uid:
            config.refusals(str(meta.get("namespace") or ""), name, uid, answer.refusal)
        raise kopf.AdmissionError(answer.admission.message, code=403)
    return dict(answer.admission.patch)


def guard_labels(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], changes: Mapping[str, str | None]
) -> dict[str, str]:
    """The labels patch that guards a Rollout (its writes seen by the webhook with
    ``failurePolicy: Fail``) once it carries overrides, has approval steps (who changes its
    template must be recorded) or is a ModelRelease's child."""
    annotations = {**_annotations(new), **changes}
    needed = (
        annotations.get(OVERRIDES) is not None
        or _release_of(old, new) is not None
        or bool(approval_steps(new))
    )
    if needed and _labels(new).get(GUARDED_LABEL) != "true":
        return {GUARDED_LABEL: "true"}
    return {}


Decider = Callable[..., dict[str, str | None]]
Labeller = Callable[
    [Mapping[str, Any] | None, Mapping[str, Any], Mapping[str, str | None]], dict[str, str]
]


def _admit(
    decider: Decider,
    config: AdmissionConfig,
    now: datetime,
    *,
    body: kopf.Body,
    patch: kopf.Patch,
    userinfo: kopf.UserInfo,
    logger: kopf.Logger,
    kwargs: Mapping[str, Any],
    labeller: Labeller | None = None,
) -> None:
    """One admission request: the decider's patch (and the labeller's) merged into kopf's, or
    kopf's refusal."""
    old: Mapping[str, Any] | None = kwargs.get("old")
    new: Mapping[str, Any] | None = kwargs.get("new")
    user = userinfo.get("username")
    try:
        check_caller(config, kwargs.get("sslpeer"))
        changes = decider(
            config,
            operation=str(kwargs.get("operation") or ""),
            old=old,
            new=new if new is not None else body,
            userinfo=userinfo,
            now=now,
        )
    except kopf.AdmissionError as refused:
        logger.info(f"refused for {user}: {refused}")
        raise
    if changes:
        annotations = patch.setdefault("metadata", {}).setdefault("annotations", {})
        annotations.update(changes)
        written = sorted(k for k, v in changes.items() if v is not None)
        logger.info(f"recorded {', '.join(written) or 'nothing'} for {user}")
    labels = labeller(old, new if new is not None else body, changes) if labeller else {}
    if labels:
        patch.setdefault("metadata", {}).setdefault("labels", {}).update(labels)


#: Whether a handler takes an admission request (it may refuse it by raising instead).
Takes = Callable[[kopf.Body, Mapping[str, Any]], bool]


def _mutator(
    decider: Decider,
    config: AdmissionConfig,
    clock: Callable[[], datetime],
    *,
    labeller: Labeller | None = None,
    takes: Takes | None = None,
) -> Callable[..., None]:
    """A kopf mutating handler: :func:`_admit` with ``decider`` (and ``labeller``) for each
    request ``takes`` accepts (all when None)."""

    def handler(
        *,
        body: kopf.Body,
        patch: kopf.Patch,
        userinfo: kopf.UserInfo,
        logger: kopf.Logger,
        **kwargs: Any,
    ) -> None:
        if takes is not None and not takes(body, kwargs):
            return
        _admit(
            decider,
            config,
            clock(),
            body=body,
            patch=patch,
            userinfo=userinfo,
            logger=logger,
            kwargs=kwargs,
            labeller=labeller,
        )

    return handler


def _keeps_the_guard(body: kopf.Body, kwargs: Mapping[str, Any]) -> bool:
    """The unguarded entry refuses a write that takes the guard label off a Rollout."""
    if _labels(kwargs.get("old")).get(GUARDED_LABEL) and not _labels(body).get(GUARDED_LABEL):
        raise kopf.AdmissionError(
            f"{GUARDED_LABEL} is kept by the operator's webhook; keep it when replacing "
            "the rollout",
            code=403,
        )
    return True


def _was_guarded(body: kopf.Body, kwargs: Mapping[str, Any]) -> bool:
    """The guarded entry takes creates and the writes of Rollouts already guarded: a write
    that adds the label was handled by the unguarded entry (handling it again would take
    that entry's own records for a person's edit)."""
    old = kwargs.get("old")
    return old is None or bool(_labels(old).get(GUARDED_LABEL))


def register_admission(
    registry: kopf.OperatorRegistry,
    config: AdmissionConfig,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Register the mutating handlers for ModelReleases and Rollouts in ``registry``."""
    kopf.on.mutate(
        GROUP,
        VERSION,
        PLURAL,
        id=HANDLER_ID,
        operations=["CREATE", "UPDATE"],
        persistent=True,
        registry=registry,
    )(_mutator(decide, config, clock))
    rollout_records = _mutator(
        decide_rollout, config, clock, labeller=guard_labels, takes=_keeps_the_guard
    )
    guarded_rollout_records = _mutator(
        decide_rollout, config, clock, labeller=guard_labels, takes=_was_guarded
    )

    # Two webhooks for Rollouts, split by the guard label (kopf builds each objectSelector from
    # ``labels``): guarded Rollouts fail closed, the others open. The API server calls a webhook
    # when the old or the new object matches, in this order, each on the object as the ones
    # before left it. So the unguarded entry handles a write that adds the label, and refuses
    # one that takes it off; the guarded entry handles the writes of guarded Rollouts, and
    # creates that carry the label (the operator's child Rollouts).
    kopf.on.mutate(
        GROUP,
        VERSION,
        ROLLOUT_PLURAL,
        id=ROLLOUT_HANDLER_ID,
        operations=["CREATE", "UPDATE"],
        labels={GUARDED_LABEL: kopf.ABSENT},
        persistent=True,
        ignore_failures=True,
        registry=registry,
    )(rollout_records)
    kopf.on.mutate(
        GROUP,
        VERSION,
        ROLLOUT_PLURAL,
        id=GUARDED_HANDLER_ID,
        operations=["CREATE", "UPDATE"],
        labels={GUARDED_LABEL: kopf.PRESENT},
        persistent=True,
        registry=registry,
    )(guarded_rollout_records)


@dataclass(frozen=True)
class _Refused:
    namespace: str
    name: str
    uid: str


def refusal_events(cluster: KubeCluster, log: Any) -> RefusalSink:
    """A :data:`RefusalSink` that posts the Warning event ``ApprovalRefused`` on the Rollout
    (a failure to post is logged: the caller has the refusal already)."""

    def report(namespace: str, name: str, uid: str, refusal: ApprovalRefusal) -> None:
        role = f" as {refusal.role}" if refusal.role else ""
        event = Event.of(
            R.APPROVAL_REFUSED,
            detail=f"approval by {refusal.user}{role} refused: {refusal.message}",
        )
        try:
            cluster.post_event(_Refused(namespace, name, uid), event)
        except AdapterError as exc:
            log.warning(
                "cannot post ApprovalRefused", rollout=f"{namespace}/{name}", error=str(exc)
            )

    return report


def webhook_server(settings: Settings) -> kopf.WebhookServer:
    """kopf's HTTPS server for the webhook, from the settings' port, addresses and files."""
    if not settings.webhook_enabled:
        raise AdmissionSetupError("the webhook is off (ROLLWISE_WEBHOOK_PORT unset or 0)")
    if settings.webhook_cert_file is None or settings.webhook_key_file is None:
        raise AdmissionSetupError(
            "the webhook needs ROLLWISE_WEBHOOK_CERT_FILE and ROLLWISE_WEBHOOK_KEY_FILE"
        )
    if settings.webhook_client_auth and settings.webhook_client_ca_file is None:
        raise AdmissionSetupError(
            "the webhook needs ROLLWISE_WEBHOOK_CLIENT_CA_FILE to authenticate the API server "
            "(or ROLLWISE_WEBHOOK_CLIENT_AUTH=none)"
        )
    client_ca = settings.webhook_client_ca_file if settings.webhook_client_auth else None
    for path in (settings.webhook_cert_file, settings.webhook_key_file, client_ca):
        if path is not None and not Path(path).is_file():
            raise AdmissionSetupError(f"the webhook certificate file {path} does not exist")
    return kopf.WebhookServer(
        addr=settings.webhook_listen,
        port=settings.webhook_port,
        host=settings.webhook_host,
        certfile=settings.webhook_cert_file,
        pkeyfile=settings.webhook_key_file,
        cafile=settings.webhook_ca_file,
        # The TLS handshake itself refuses a caller without a certificate the CA signed.
        verify_mode=ssl.CERT_REQUIRED if client_ca is not None else None,
        verify_cafile=client_ca,
    )


def configure_admission(kopf_settings: kopf.OperatorSettings, settings: Settings) -> None:
    """Point kopf at the webhook server; let it manage the configuration when asked to."""
    kopf_settings.admission.server = webhook_server(settings)
    kopf_settings.admission.managed = WEBHOOK_CONFIGURATION if settings.webhook_managed else None


def setup_admission(
    registry: kopf.OperatorRegistry,
    kopf_settings: kopf.OperatorSettings,
    settings: Settings,
    serving: ServingReads | None = None,
    refusals: RefusalSink | None = None,
) -> bool:
    """Everything ``main`` needs: registers the handlers and the server when the webhook is
    on (the serving gate when ``serving`` is given). Returns whether it is on; raises
    :class:`AdmissionSetupError` for unusable settings. ``refusals`` reports a refused
    approval of a Rollout (the Warning event ``ApprovalRefused``)."""
    if not settings.webhook_enabled:
        return False
    register_admission(registry, load_admission(settings, refusals))
    if serving is not None:
        register_serving_gate(registry, serving)
    configure_admission(kopf_settings, settings)
    return True


__all__ = [
    "GROUP",
    "GUARDED_HANDLER_ID",
    "GUARDED_WEBHOOK_PATH",
    "HANDLER_ID",
    "PLURAL",
    "ROLLOUT_HANDLER_ID",
    "ROLLOUT_PLURAL",
    "ROLLOUT_WEBHOOK_PATH",
    "VERSION",
    "WEBHOOK_PATH",
    "AdmissionConfig",
    "AdmissionSetupError",
    "RefusalSink",
    "approval_steps",
    "check_caller",
    "configure_admission",
    "decide",
    "decide_rollout",
    "guard_labels",
    "load_admission",
    "peer_names",
    "read_keyring",
    "read_record_key",
    "refusal_events",
    "register_admission",
    "setup_admission",
    "webhook_server",
]
