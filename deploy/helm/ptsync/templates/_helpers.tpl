{{/* The chart's name, at most 63 characters (a DNS label). */}}
{{- define "ptsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release name, with the chart's unless it holds it already. */}}
{{- define "ptsync.fullname" -}}
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

{{- define "ptsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ptsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ptsync.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ptsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ptsync.secretName" -}}
{{- default (include "ptsync.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "ptsync.claimName" -}}
{{- default (printf "%s-state" (include "ptsync.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
ptsync.yaml: config with the two keys the chart owns. metrics.listen must
leave the pod for the scrape and the probes; state.dir is the volume's mount.
*/}}
{{- define "ptsync.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if hasKey (default dict $config.metrics) "listen" }}
{{- fail "config.metrics.listen is set by the chart from metrics.port: remove it" }}
{{- end }}
{{- if hasKey (default dict $config.state) "dir" }}
{{- fail "config.state.dir is set by the chart when persistence.enabled: remove it" }}
{{- end }}
{{- if eq .Values.mode "daemon" }}
{{- $_ := set $config "metrics" (merge (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port))) (default dict $config.metrics)) }}
{{- end }}
{{- if .Values.persistence.enabled }}
{{- $_ := set $config "state" (merge (dict "dir" "/var/lib/ptsync") (default dict $config.state)) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
GOMEMLIMIT from resources.limits.memory (Mi or Gi, the schema says) and
goMemLimitPercent, so the two cannot drift apart.
*/}}
{{- define "ptsync.goMemLimit" -}}
{{- $limit := .Values.resources.limits.memory }}
{{- $mib := 0 }}
{{- if hasSuffix "Gi" $limit }}
{{- $mib = mul (trimSuffix "Gi" $limit | int) 1024 }}
{{- else }}
{{- $mib = trimSuffix "Mi" $limit | int }}
{{- end }}
{{- printf "%dMiB" (div (mul $mib .Values.goMemLimitPercent) 100) }}
{{- end }}

{{/* The pod spec of both modes: `ptsync run` or `ptsync sync`. */}}
{{- define "ptsync.podSpec" -}}
# ptsync talks to PagerTree and the directory, never to the Kubernetes API.
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile: {type: RuntimeDefault}
containers:
  - name: ptsync
    image: {{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) | quote }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    {{- if eq .Values.mode "daemon" }}
    args: ["run", "--config", "/etc/ptsync/ptsync.yaml"]
    {{- else }}
    args:
      {{- toYaml (concat (list "sync" "--config" "/etc/ptsync/ptsync.yaml") .Values.cronjob.args) | nindent 6 }}
    {{- end }}
    envFrom:
      - secretRef: {name: {{ include "ptsync.secretName" . }}}
    env:
      # A soft heap limit under the container's limit keeps the collector
      # ahead on large directories (docs/benchmarks.md).
      - name: GOMEMLIMIT
        value: {{ include "ptsync.goMemLimit" . }}
      {{- with .Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if eq .Values.mode "daemon" }}
    ports:
      - {name: metrics, containerPort: {{ .Values.metrics.port }}}
    readinessProbe:
      httpGet: {path: /readyz, port: metrics}
      periodSeconds: 30
    livenessProbe:
      httpGet: {path: /healthz, port: metrics}
      periodSeconds: 30
    {{- end }}
    resources:
      {{- toYaml .Values.resources | nindent 6 }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts:
      - {name: config, mountPath: /etc/ptsync, readOnly: true}
      {{- if .Values.persistence.enabled }}
      - {name: state, mountPath: /var/lib/ptsync}
      {{- end }}
      {{- with .Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap: {name: {{ include "ptsync.fullname" . }}}
  {{- if .Values.persistence.enabled }}
  - name: state
    persistentVolumeClaim: {claimName: {{ include "ptsync.claimName" . }}}
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template metadata: a config change rolls the pod. */}}
{{- define "ptsync.podMetadata" -}}
labels:
  {{- include "ptsync.selectorLabels" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "ptsync.config" . | sha256sum }}
  {{- with .Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
