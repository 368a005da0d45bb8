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
