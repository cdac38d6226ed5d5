{{/* Names and labels shared by every object of the release. */}}
{{- define "aegis.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aegis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object; selector labels (name, instance) are added by each object. */}}
{{- define "aegis.labels" -}}
helm.sh/chart: {{ include "aegis.chart" . }}
app.kubernetes.io/part-of: aegistrader
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ default "digest" .Values.global.imageTag | quote }}
{{- end -}}

{{/* Selector labels of one app: (dict "root" $ "app" $app) */}}
{{- define "aegis.selectorLabels" -}}
app.kubernetes.io/name: {{ .app.name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "aegis.appName" -}}
{{- printf "%s-%s" .root.Release.Name .app.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image: a digest pins it and wins over the tag; else the app's tag or global.imageTag. */}}
{{- define "aegis.image" -}}
{{- $image := .app.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- $tag := default .root.Values.global.imageTag $image.tag -}}
{{- if not $tag -}}
{{- /* fail, not required: helm lint lets a missing required value through */ -}}
{{- fail (printf "%s has no image tag or digest: set global.imageTag (e.g. --set global.imageTag=main-1a2b3c4) or its image.digest" .app.name) -}}
{{- end -}}
{{- printf "%s:%s" $image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The tag the release reports (labels, IMAGE_TAG): the tag, else "digest" when only pinned. */}}
{{- define "aegis.tag" -}}
{{- default "digest" (default .root.Values.global.imageTag .app.image.tag) -}}
{{- end -}}

{{- define "aegis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aegis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
