"""The one exception hierarchy every adapter raises.

Adapters never let a client library's exception escape (``kubernetes.client.ApiException``,
``urllib3`` or ``requests`` errors, ``prometheus_api_client`` exceptions): they translate it
into one of these, keeping the original as ``__cause__``. Only ``rollwise.runtime`` turns them
into kopf's temporary or permanent errors, guided by ``retryable``::

    AdapterError                      retryable
    ├── KubeError                     False  (any other API failure)
    │   ├── NotFound                  False  404: the object (or its kind) does not exist
    │   ├── Conflict                  True   409: stale resourceVersion, concurrent write
    │   ├── Forbidden                 False  401/403: RBAC or credentials
    │   ├── Invalid                   False  400/422: the server refused the object
    │   ├── NotOwned                  False  an object with our name is not ours to change
    │   ├── ManifestRefused           False  a release manifest exists for another version
    │   └── Unavailable               True   429, 5xx, timeouts, connection errors
    ├── RouterError                   False
    │   ├── RouteNotFound             False  the HTTPRoute/VirtualService/Deployment is missing
    │   └── RouteMisconfigured        False  it exists but cannot carry the split as written
    ├── ProviderError                 False
    │   ├── ProviderUnavailable       True   connection, timeout, 429/5xx from the provider
    │   └── QueryError                False  bad query or an ambiguous result (several series)
    │       └── QueryRefused          False  the provider cannot parse the query at all
    ├── RegistryError                 False  (model registry / alias store: any other failure)
    │   ├── RegistryUnavailable       True   connection, timeout, 429/5xx from the registry
    │   ├── ModelVersionNotFound      False  the registry knows no such model or version
    │   ├── AliasConflict             True   the alias is not at the version the caller expected
    │   └── AliasNotVerified          True   a write was accepted but the read-back differs
    └── SinkError                     False  (a notification sink: any other failure)
        ├── SinkUnavailable           True   connection, timeout, 408/429/5xx from the receiver
        ├── SinkRejected              False  the receiver answered 3xx or another 4xx
        ├── SinkForbidden             False  the operator's host policy forbids the address
        └── SinkSecretError           False  the sink's Secret is missing, unmarked or unusable

``retryable`` means "the same call may succeed later without anybody changing anything":
the runtime retries those with backoff and reports the others (status condition, event)
until the spec or the cluster changes. A router reading or writing its object through the
API raises the ``KubeError`` subclasses for transport and concurrency failures (a ``Conflict``
from a concurrent edit stays a ``Conflict``) and ``RouterError`` for what only a router knows.

"No data" from a metric provider is not an error: ``MetricProvider.query`` returns None, which
the core treats as INCONCLUSIVE without counting it as a provider error. Likewise an alias
that is not set is not an error: ``AliasStore.get`` returns None. An alias store kept in a
Kubernetes object (the ConfigMap store) raises the ``KubeError`` subclasses for transport
failures, like a router; ``AliasConflict`` is what it raises for a lost race on the alias.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base of every adapter failure. ``retryable`` is a class default an instance may override
    (``retry_after``: seconds the server asked us to wait, when it said so)."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after


# -------------------------------------------------------------------------------- Kubernetes


class KubeError(AdapterError):
    """The Kubernetes API refused or failed a request. ``status`` is the HTTP code (None for
    transport failures); ``answer`` the server's own sentence (its Status message, for a
    user's eyes; else the message); ``named`` the object a 404's Status names (empty when the
    resource type itself is not served)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        answer: str = "",
        named: str = "",
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.status = status
        self.answer = answer or message
        self.named = named


class NotFound(KubeError):
    """404: the object, or its resource type, does not exist."""


class Conflict(KubeError):
    """409: the object changed since it was read (or already exists); read again and retry."""

    retryable = True


class Forbidden(KubeError):
    """401/403: the operator's credentials or RBAC do not allow the request."""


class Invalid(KubeError):
    """400/422: the API server refused the object (schema, validation, admission)."""


class NotOwned(KubeError):
    """An object with the name the operator would use exists but is not controlled by the
    Rollout; the operator never adopts or overwrites it."""


class ManifestRefused(KubeError):
    """A release manifest exists for another version: manifests are never overwritten."""


class Unavailable(KubeError):
    """The API server cannot answer now: 429, 5xx, a timeout or a connection failure."""

    retryable = True


# ------------------------------------------------------------------------------------ Routers


class RouterError(AdapterError):
    """A traffic router cannot apply or read the split."""


class RouteNotFound(RouterError):
    """The routing object the Rollout names does not exist (or its kind is not installed)."""


class RouteMisconfigured(RouterError):
    """The routing object exists but cannot carry the split: no rule or route sends traffic to
    the stable Service, a named rule or route is missing, or the weights cannot be read."""


# --------------------------------------------------------------------------- Metric providers


class ProviderError(AdapterError):
    """A metric provider failed to answer a query."""


class ProviderUnavailable(ProviderError):
    """The provider cannot be reached or cannot answer now (connection refused, timeout, 5xx)."""

    retryable = True


class QueryError(ProviderError):
    """The provider refused the query (syntax, execution) or its result is not one number."""


class QueryRefused(QueryError):
    """The provider cannot parse the query: no data or time will make it run. ``message`` is
    the provider's own explanation, which names the position (a spec error, not an outage)."""


# ------------------------------------------------------------------- Model registries (alias)


class RegistryError(AdapterError):
    """A model registry or alias store refused or failed a request."""


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached or cannot answer now (connection refused, timeout,
    429, 5xx)."""

    retryable = True


class ModelVersionNotFound(RegistryError):
    """The registry has no such registered model, or no such version of it."""


class AliasConflict(RegistryError):
    """The alias does not point where the caller expected (somebody else moved it), or the
    write lost a race with a concurrent writer: read the alias again and decide again."""

    retryable = True


class AliasNotVerified(RegistryError):
    """The registry accepted a write but reading the alias back does not show it; the flip is
    not done (retry; a concurrent writer or a lagging replica may be the cause)."""

    retryable = True


# ------------------------------------------------------------------------ Notification sinks


class SinkError(AdapterError):
    """A notification sink refused or failed a delivery. ``status`` is the receiver's HTTP
    status when it answered."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.status = status


class SinkUnavailable(SinkError):
    """The receiver cannot be reached or cannot take the delivery now (connection refused,
    timeout, 408, 429, 5xx)."""

    retryable = True


class SinkRejected(SinkError):
    """The receiver answered with a redirect (never followed) or a 4xx other than 408/429:
    sending the same request again would be refused again."""


class SinkForbidden(SinkError):
    """The sink's URL or the address it resolves to is outside what the operator's host policy
    allows (scheme, host allow-list, denied networks such as link-local metadata addresses)."""


class SinkSecretError(SinkError):
    """The sink's Secret is missing, not marked for notifications, unreadable (RBAC) or has no
    usable ``url``."""


__all__ = [
    "AdapterError",
    "AliasConflict",
    "AliasNotVerified",
    "Conflict",
    "Forbidden",
    "Invalid",
    "KubeError",
    "ManifestRefused",
    "ModelVersionNotFound",
    "NotFound",
    "NotOwned",
    "ProviderError",
    "ProviderUnavailable",
    "QueryError",
    "QueryRefused",
    "RegistryError",
    "RegistryUnavailable",
    "RouteMisconfigured",
    "RouteNotFound",
    "RouterError",
    "SinkError",
    "SinkForbidden",
    "SinkRejected",
    "SinkSecretError",
    "SinkUnavailable",
    "Unavailable",
]
