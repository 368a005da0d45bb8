{{/* The chart name, truncated for label values. */}}
{{- define "extauthz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's object name prefix. */}}
{{- define "extauthz.fullname" -}}
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

{{- define "extauthz.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: extauthz
{{- end }}

{{- define "extauthz.labels" -}}
{{ include "extauthz.commonLabels" . }}
{{ include "extauthz.selectorLabels" . }}
{{- end }}

{{- define "extauthz.redisLabels" -}}
{{ include "extauthz.commonLabels" . }}
{{ include "extauthz.redisSelectorLabels" . }}
{{- end }}

{{- define "extauthz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "extauthz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: authorizer
{{- end }}

{{- define "extauthz.redisSelectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: replay-store
{{- end }}

{{- define "extauthz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "extauthz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "extauthz.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "extauthz.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "extauthz.fullname" .)) .Values.policy.existingConfigMap }}
{{- end }}

{{/* The policy files the chart ships: policy.files, or the example. */}}
{{- define "extauthz.policyFiles" -}}
{{- if .Values.policy.files }}
{{- toYaml .Values.policy.files }}
{{- else }}
{{- toYaml (dict "policy.yaml" (.Files.Get "files/policy.yaml")) }}
{{- end }}
{{- end }}

{{- define "extauthz.redisName" -}}
{{- printf "%s-redis" (include "extauthz.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The replay store URL when it is not in a Secret. */}}
{{- define "extauthz.replayStoreURL" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:6379/0" (include "extauthz.redisName" .) }}
{{- else }}
{{- .Values.replayStore.url }}
{{- end }}
{{- end }}

{{/*
Refuses values that render a deployment that silently breaks single use:
more than one replica, each with its own memory replay store. The replay
store must be set through replayStore (or redis), where this can see it.
*/}}
{{- define "extauthz.checkValues" -}}
{{- with .Values.grpcTLS }}
{{- if and .secretName .spiffe.enabled }}
{{- fail "extauthz: grpcTLS.secretName and grpcTLS.spiffe.enabled exclude each other: with SPIFFE, the X.509-SVID is the server certificate and the trust bundle the client CA" }}
{{- end }}
{{- if and .spiffe.enabled (not (or .spiffe.authorizedIDs .spiffe.trustDomains)) }}
{{- fail "extauthz: grpcTLS.spiffe.enabled needs grpcTLS.spiffe.authorizedIDs or grpcTLS.spiffe.trustDomains: which clients may call" }}
{{- end }}
{{- end }}
{{- range .Values.extraArgs }}
{{- if regexMatch "^--?replay-store(=|$)" . }}
{{- fail (printf "extauthz: extraArgs sets %q: set the replay store with replayStore.url or replayStore.existingSecret instead, so the chart can check it against the replica count" .) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if eq (get . "name") "EXTAUTHZ_REPLAY_STORE" }}
{{- fail "extauthz: extraEnv sets EXTAUTHZ_REPLAY_STORE: set the replay store with replayStore.url or replayStore.existingSecret instead, so the chart can check it against the replica count" }}
{{- end }}
{{- end }}
{{- $memory := and (not .Values.redis.enabled) (not .Values.replayStore.existingSecret) (eq .Values.replayStore.url "memory") }}
{{- $replicas := int .Values.replicaCount }}
{{- $what := printf "replicaCount is %d" $replicas }}
{{- if .Values.autoscaling.enabled }}
{{- $replicas = int .Values.autoscaling.maxReplicas }}
{{- $what = printf "autoscaling.enabled with maxReplicas %d" $replicas }}
{{- end }}
{{- if and $memory (gt $replicas 1) (not .Values.replayStore.allowMemoryWithReplicas) }}
{{- fail (printf "extauthz: %s, but the replay store is memory (replayStore.url): every replica would keep its own jti store, so a client assertion or DPoP proof could be used once on each replica. Give the replicas one Redis (replayStore.url=redis://HOST:6379/0 or rediss://..., replayStore.existingSecret, or redis.enabled=true for development), or run one replica (replicaCount=1, autoscaling.enabled=false). If no rule takes client assertions or DPoP proofs, replayStore.allowMemoryWithReplicas=true allows it." $what) }}
{{- end }}
{{- end }}

{{/* The directory the SPIFFE CSI driver mounts: the socket's. */}}
{{- define "extauthz.spiffeSocketDir" -}}
{{- .Values.grpcTLS.spiffe.socket | trimPrefix "unix://" | dir }}
{{- end }}
