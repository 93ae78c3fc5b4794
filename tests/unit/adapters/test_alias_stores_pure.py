"""The alias store contract helpers, ``NopAliasStore`` and the ConfigMap key encoding."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rollwise.adapters.errors import AliasConflict, AliasNotVerified, RegistryError
from rollwise.adapters.registry import (
    DEFAULT_CONFIGMAP,
    ConfigMapAliasStore,
    MLflowAliasStore,
    MLflowRegistry,
    UnknownRegistry,
    alias_store_for,
)
from rollwise.adapters.registry.base import (
    EXPECT_UNSET,
    AliasTarget,
    NopAliasStore,
    check_expected,
    verify,
)
from rollwise.adapters.registry.configmap import MAX_KEY_LENGTH, decode_key, encode_key
from rollwise.core.spec_release import AliasStore as AliasStoreSpec

V1 = AliasTarget("1", "s3://models/fraud/1", "sha256:aa")
V2 = AliasTarget("2", "s3://models/fraud/2", None)
KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


@pytest.mark.parametrize(
    ("current", "expected", "conflict"),
    [
        pytest.param(V1, None, False, id="no-check"),
        pytest.param(None, None, False, id="no-check-unset"),
        pytest.param(V1, "1", False, id="matches"),
        pytest.param(V1, "2", True, id="other-version"),
        pytest.param(None, EXPECT_UNSET, False, id="expected-unset-is-unset"),
        pytest.param(V1, EXPECT_UNSET, True, id="expected-unset-but-set"),
        pytest.param(None, "1", True, id="expected-version-but-unset"),
    ],
)
def test_check_expected(current: AliasTarget | None, expected: str | None, conflict: bool) -> None:
    if conflict:
        with pytest.raises(AliasConflict, match="alias 'production' of model 'fraud'"):
            check_expected("fraud", "production", current, expected)
    else:
        check_expected("fraud", "production", current, expected)


def test_verify_refuses_a_different_read_back() -> None:
    verify("m", "a", V1, V1)
    verify("m", "a", None, None)
    with pytest.raises(AliasNotVerified, match="reads back as None"):
        verify("m", "a", V1, None)
    with pytest.raises(AliasNotVerified):
        verify("m", "a", V1, AliasTarget("1", "s3://models/fraud/1", "sha256:bb"))


def test_nop_store_records_only_real_writes() -> None:
    store = NopAliasStore()
    assert store.set("m", "production", V1, expected=EXPECT_UNSET) == V1
    assert store.set("m", "production", V1, expected="1") == V1
    assert store.set("m", "production", V2, expected="1") == V2
    store.delete("m", "production", expected="2")
    store.delete("m", "production", expected=None)
    assert store.writes == [
        ("m", "production", V1),
        ("m", "production", V2),
        ("m", "production", None),
    ]


@pytest.mark.parametrize(
    ("model", "alias", "key"),
    [
        pytest.param("fraud-detector", "production", "fraud-detector.production", id="plain"),
        pytest.param("my.model", "prod", "my_2emodel.prod", id="dot"),
        pytest.param("team/fraud", "prod", "team_2ffraud.prod", id="slash"),
        pytest.param("snake_case", "a_b", "snake_5fcase.a_5fb", id="underscore"),
        pytest.param("Modèle é", "prod", "Mod_c3_a8le_20_c3_a9.prod", id="utf8-and-space"),
    ],
)
def test_configmap_keys_are_valid_and_decode_back(model: str, alias: str, key: str) -> None:
    assert encode_key(model, alias) == key
    assert KEY_RE.match(key)
    assert decode_key(key) == (model, alias)


def test_configmap_keys_do_not_collide_across_the_separator() -> None:
    assert encode_key("a.b", "c") != encode_key("a", "b.c")


@pytest.mark.parametrize(
    ("model", "alias"),
    [
        pytest.param("", "prod", id="empty-model"),
        pytest.param("m", "", id="empty-alias"),
        pytest.param("x" * MAX_KEY_LENGTH, "prod", id="too-long"),
    ],
)
def test_configmap_keys_refused(model: str, alias: str) -> None:
    with pytest.raises(RegistryError):
        encode_key(model, alias)


def test_alias_store_for_picks_the_store_the_spec_names() -> None:
    from kubernetes import client  # noqa: PLC0415

    api_client = client.ApiClient()
    registries = {"main": MLflowRegistry("main", "http://mlflow:5000/", token="t0k")}
    default = alias_store_for(None, namespace="ns", kube=api_client, registries=registries)
    assert isinstance(default, ConfigMapAliasStore)
    assert (default.namespace, default.name) == ("ns", DEFAULT_CONFIGMAP)
    named = alias_store_for(
        AliasStoreSpec.model_validate({"configMap": {"name": "aliases"}}),
        namespace="ns",
        kube=api_client,
        registries=registries,
    )
    assert isinstance(named, ConfigMapAliasStore)
    assert named.name == "aliases"
    mlflow = alias_store_for(
        AliasStoreSpec.model_validate({"mlflow": {"registry": "main"}}),
        namespace="ns",
        kube=api_client,
        registries=registries,
    )
    assert isinstance(mlflow, MLflowAliasStore)
    assert mlflow.base == "http://mlflow:5000/api/2.0/mlflow"
    assert mlflow.session.headers["Authorization"] == "Bearer t0k"


@pytest.mark.parametrize(
    "store",
    [
        pytest.param({"mlflow": {"registry": "other"}}, id="unknown-name"),
        pytest.param({"mlflow": {"trackingURI": "http://internal-svc/admin#"}}, id="an-address"),
    ],
)
def test_an_mlflow_store_is_only_ever_a_registry_of_the_settings(store: dict[str, Any]) -> None:
    from kubernetes import client  # noqa: PLC0415

    registries = {"main": MLflowRegistry("main", "http://mlflow:5000", token="t0k")}
    with pytest.raises(UnknownRegistry):
        alias_store_for(
            AliasStoreSpec.model_validate(store),
            namespace="ns",
            kube=client.ApiClient(),
            registries=registries,
        )
