{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "videocounter-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "videocounter-operator.fullname" -}}
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

{{- define "videocounter-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of the operator's pods; never change them (a Deployment's selector is immutable). */}}
{{- define "videocounter-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "videocounter-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "videocounter-operator.labels" -}}
helm.sh/chart: {{ include "videocounter-operator.chart" . }}
{{ include "videocounter-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: videocounter
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "videocounter-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "videocounter-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest. Argument: (dict "image" .Values.image "context" $) */}}
{{- define "videocounter-operator.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .context.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "videocounter-operator.leaseName" -}}
{{- default (include "videocounter-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The labels the operator puts on every worker pod it creates (operator/src/builders). */}}
{{- define "videocounter-operator.workerSelector" -}}
app.kubernetes.io/name: videocounter
app.kubernetes.io/component: worker
app.kubernetes.io/managed-by: videocounter-operator
{{- end }}

{{/* Namespaces whose workers are scraped: watchNamespace, or all. */}}
{{- define "videocounter-operator.workerNamespaceSelector" -}}
{{- if .Values.watchNamespace }}
matchNames:
  - {{ .Values.watchNamespace }}
{{- else }}
any: true
{{- end }}
{{- end }}

{{/* The Prometheus `job` of the operator's ServiceMonitor target (the Service name). */}}
{{- define "videocounter-operator.operatorJob" -}}
{{- include "videocounter-operator.fullname" . }}
{{- end }}
