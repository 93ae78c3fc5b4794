{{/*
Names, labels and the RBAC rule tables of the Rollwise chart. The rule tables live here, once,
so that the ClusterRole (scope "cluster") and the per-namespace Roles (scope "namespace") grant
exactly the same permissions; tests/unit/test_chart.py pins them.
*/}}

{{- define "rollwise.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollwise.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rollwise.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollwise.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollwise.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rollwise.labels" -}}
helm.sh/chart: {{ include "rollwise.chart" . }}
{{ include "rollwise.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: rollwise
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "rollwise.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rollwise.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rollwise.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the replicas coordinate through kopf peering (more than one replica). */}}
{{- define "rollwise.peeringEnabled" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/*
Checks of value combinations the schema cannot express alone; rendered by every template that
depends on them, so a bad combination fails `helm install` before anything is applied.
*/}}
{{- define "rollwise.validate" -}}
{{- if and (eq .Values.scope "namespace") (empty .Values.watchNamespaces) }}
{{- fail "scope \"namespace\" needs at least one entry in watchNamespaces" }}
{{- end }}
{{- if and (eq .Values.scope "cluster") (not (empty .Values.watchNamespaces)) }}
{{- fail "watchNamespaces is only used with scope \"namespace\"; scope \"cluster\" watches every namespace" }}
{{- end }}
{{- if and (eq .Values.scope "namespace") .Values.settingsConfigMap (not (has .Release.Namespace .Values.watchNamespaces)) }}
{{- fail "settingsConfigMap lives in the release namespace, which must then be one of watchNamespaces" }}
{{- end }}
{{- range $what := list "policyConfigMap" "freezeConfigMap" }}
{{- $ref := get $.Values.governance $what }}
{{- if and (eq $.Values.scope "namespace") $ref (not (has (first (splitList "/" $ref)) $.Values.watchNamespaces)) }}
{{- fail (printf "governance.%s must be in one of watchNamespaces with scope \"namespace\" (the operator reads ConfigMaps only there)" $what) }}
{{- end }}
{{- end }}
{{- if and .Values.webhook.enabled .Values.webhook.url (ne .Values.webhook.configuration "chart") }}
{{- fail "webhook.url is used with webhook.configuration \"chart\" (the chart writes the URL into its configuration)" }}
{{- end }}
{{- if and .Values.webhook.enabled .Values.webhook.url (not .Values.webhook.certificate.caBundle) }}
{{- fail "webhook.url needs webhook.certificate.caBundle: the CA of the certificate that URL serves" }}
{{- end }}
{{- if and .Values.webhook.enabled .Values.webhook.url .Values.deployment.enabled (not .Values.webhook.certificate.existingSecret) }}
{{- fail "webhook.url with deployment.enabled needs webhook.certificate.existingSecret: the in-cluster operator's serving certificate" }}
{{- end }}
{{- if and .Values.webhook.enabled .Values.webhook.certificate.existingSecret (eq .Values.webhook.configuration "chart") (not .Values.webhook.certificate.caBundle) }}
{{- fail "webhook.certificate.existingSecret needs webhook.certificate.caBundle (the CA the API server trusts) with webhook.configuration \"chart\"" }}
{{- end }}
{{- end }}

{{/*
Rules for namespaced resources: the whole grant of a namespace-scoped install's Role, and part of
the ClusterRole of a cluster-scoped one. docs/install.md says why each verb is needed.
*/}}
{{- define "rollwise.namespacedRules" -}}
- apiGroups: ["rollwise.dev"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
- apiGroups: ["rollwise.dev"]
  resources: ["modelreleases"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["rollwise.dev"]
  resources: ["analysistemplates"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["rollwise.dev"]
  resources: ["rollouts/status", "modelreleases/status"]
  verbs: ["patch"]
- apiGroups: ["rollwise.dev"]
  resources: ["rollouts/finalizers", "modelreleases/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices"]
  verbs: ["get", "list", "watch", "patch", "update"]
{{- if .Values.notifications.enabled }}
- apiGroups: ["rollwise.dev"]
  resources: ["notificationpolicies"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["rollwise.dev"]
  resources: ["notificationpolicies/status"]
  verbs: ["patch"]
{{- end }}
{{- if and (include "rollwise.peeringEnabled" .) (eq .Values.scope "namespace") }}
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- end }}
{{- end }}

{{/* Rules that only a ClusterRole can grant: cluster-scoped resources. */}}
{{- define "rollwise.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- if include "rollwise.webhookManagedByOperator" . }}
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  verbs: ["create", "patch"]
{{- end }}
{{- /* kopf lists and watches namespaces in both scopes: given exact names it still lists
them, retrying a refusal for over a minute before it falls back to the names. */}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- /* ClusterAnalysisTemplates are cluster-scoped: only a ClusterRole can grant reading them,
in either scope (analysisTemplates.clusterTemplates false leaves them out). */}}
{{- if .Values.analysisTemplates.clusterTemplates }}
- apiGroups: ["rollwise.dev"]
  resources: ["clusteranalysistemplates"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if eq .Values.scope "cluster" }}
{{- if include "rollwise.peeringEnabled" . }}
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- end }}
{{- end }}
{{- end }}

{{/* The ClusterRole that lets the operator read sinks' Secrets, wherever it is bound. */}}
{{- define "rollwise.notificationSecretsRole" -}}
{{- printf "%s-notification-secrets" (include "rollwise.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The namespaces where the chart binds the notification-secrets ClusterRole with a RoleBinding:
notifications.secretNamespaces, or every watched namespace with secretAccess "all" and scope
"namespace" (scope "cluster" binds it cluster-wide instead).
*/}}
{{- define "rollwise.notificationSecretNamespaces" -}}
{{- if eq .Values.notifications.secretAccess "all" }}
{{- if eq .Values.scope "namespace" }}{{ join "," .Values.watchNamespaces }}{{ end }}
{{- else }}
{{- join "," .Values.notifications.secretNamespaces }}
{{- end }}
{{- end }}

{{/* "true" when the operator (kopf) creates and patches its own webhook configuration. */}}
{{- define "rollwise.webhookManagedByOperator" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.configuration "operator") }}true{{ end }}
{{- end }}

{{- define "rollwise.webhookServiceName" -}}
{{- printf "%s-webhook" (include "rollwise.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollwise.webhookTLSSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "rollwise.fullname" .)) .Values.webhook.certificate.existingSecret }}
{{- end }}

{{/*
"true" when the chart is rendered against a cluster (helm install/upgrade, or template with
--dry-run=server): only then can a key or a CA be generated once and found again on the next
render (lookup). Rendered offline (helm template, GitOps), the chart generates no key: each
render would make a new one, voiding every record signed with the last. kube-system exists in
every cluster, and whoever installs this chart may read it (the chart installs cluster-scoped
objects).
*/}}
{{- define "rollwise.online" -}}
{{- if (lookup "v1" "Namespace" "" "kube-system") }}true{{ end }}
{{- end }}

{{- define "rollwise.webhookClientSecretName" -}}
{{- printf "%s-webhook-client" (include "rollwise.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when the webhook requires the API server's client certificate. */}}
{{- define "rollwise.webhookClientAuth" -}}
{{- if and .Values.webhook.enabled (eq (.Values.webhook.clientAuth.mode | default "required") "required") }}true{{ end }}
{{- end }}

{{/*
governance.mlflow.registries as ROLLWISE_MLFLOW_REGISTRIES: name -> {url, tokenFile}, the
token of each registry mounted from its Secret under /etc/rollwise/registries/<name>/.
*/}}
{{- define "rollwise.mlflowRegistries" -}}
{{- $out := dict }}
{{- range $name, $registry := .Values.governance.mlflow.registries }}
{{- $entry := dict "url" $registry.url }}
{{- if and $registry.tokenSecret $registry.tokenSecret.name }}
{{- $_ := set $entry "tokenFile" (printf "/etc/rollwise/registries/%s/%s" $name ($registry.tokenSecret.key | default "token")) }}
{{- end }}
{{- $_ := set $out $name $entry }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "rollwise.recordKeySecretName" -}}
{{- default (printf "%s-record-key" (include "rollwise.fullname" .)) .Values.governance.recordKey.existingSecret }}
{{- end }}

{{/* governance.roleGroups as ROLLWISE_ROLE_GROUPS: "role=group,group;role=group". */}}
{{- define "rollwise.roleGroups" -}}
{{- $parts := list }}
{{- range $role := keys .Values.governance.roleGroups | sortAlpha }}
{{- $parts = append $parts (printf "%s=%s" $role (join "," (get $.Values.governance.roleGroups $role))) }}
{{- end }}
{{- join ";" $parts }}
{{- end }}

{{/*
The web metric providers as the operator reads them (ROLLWISE_WEB_PROVIDERS): a JSON list of
name, url and, for a provider with headers, the directory its Secret is mounted at.
*/}}
{{- define "rollwise.webProviders" -}}
{{- $out := list -}}
{{- range .Values.webProviders -}}
{{- $one := dict "name" .name "url" .url -}}
{{- if .headersSecret -}}
{{- $_ := set $one "headersDir" (printf "/etc/rollwise/web/%s" .name) -}}
{{- end -}}
{{- $out = append $out $one -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
