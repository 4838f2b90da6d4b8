{{/* Names and labels shared by every template. */}}
{{- define "lbd.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lbd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lbd.labels" -}}
app.kubernetes.io/name: {{ include "lbd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lbd.selector" -}}
app.kubernetes.io/name: {{ include "lbd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lbd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lbd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lbd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* lbd's container. Arguments: dict "root" $ "mode" "gateway|sidecar" "workers" N "connCapacity" N "extraArgs" list "resources" map */}}
{{- define "lbd.lbdContainer" -}}
{{- $root := .root -}}
name: lbd
image: {{ include "lbd.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
command: ["lbd"]
args:
  - --mode={{ .mode }}
  - --listen=unix:///run/lbd/lbd.sock
  - --state-file=/var/lib/lbd/state
  - --metrics=0.0.0.0:{{ $root.Values.metrics.port }}
  - --log-format={{ $root.Values.logFormat }}
  {{- if .workers }}
  - --workers={{ .workers }}
  {{- end }}
  - --conn-capacity={{ int .connCapacity }}
  {{- range .extraArgs }}
  - {{ . | quote }}
  {{- end }}
ports:
  - {name: lbd-metrics, containerPort: {{ $root.Values.metrics.port }}, protocol: TCP}
securityContext:
  privileged: false
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
    # NET_ADMIN: routes, rules, addresses, the TUN device. NET_RAW: raw and AF_PACKET sockets.
    # MKNOD: /dev/net/tun, created by lbd when the runtime did not (runc and containerd allow
    # the character device 10:200 by default).
    add: ["NET_ADMIN", "NET_RAW", "MKNOD"]
livenessProbe:
  httpGet: {path: /healthz, port: lbd-metrics}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /healthz, port: lbd-metrics}
  periodSeconds: 5
volumeMounts:
  - {name: lbd-run, mountPath: /run/lbd}
  - {name: lbd-state, mountPath: /var/lib/lbd}
resources:
  {{- toYaml .resources | nindent 2 }}
{{- end -}}

{{/* lbd-controller's container. Arguments: dict "root" $ "extraArgs" list "resources" map */}}
{{- define "lbd.controllerContainer" -}}
{{- $root := .root -}}
name: lbd-controller
image: {{ include "lbd.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
command: ["lbd-controller"]
args:
  - --lbd=unix:///run/lbd/lbd.sock
  - --proxy-name={{ $root.Values.controller.proxyName }}
  - --resync={{ $root.Values.controller.resync }}
  - --drain-timeout={{ $root.Values.controller.drainTimeout }}
  - --metrics=0.0.0.0:{{ $root.Values.metrics.controllerPort }}
  - --log-format={{ $root.Values.logFormat }}
  {{- with $root.Values.controller.namespace }}
  - --namespace={{ . }}
  {{- end }}
  {{- range .extraArgs }}
  - {{ . | quote }}
  {{- end }}
env:
  - name: NODE_NAME
    valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
ports:
  - {name: ctl-metrics, containerPort: {{ $root.Values.metrics.controllerPort }}, protocol: TCP}
securityContext:
  privileged: false
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
livenessProbe:
  httpGet: {path: /healthz, port: ctl-metrics}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: ctl-metrics}
  periodSeconds: 5
volumeMounts:
  - {name: lbd-run, mountPath: /run/lbd}
resources:
  {{- toYaml .resources | nindent 2 }}
{{- end -}}

{{/* The volumes both containers share: lbd's control socket and its state file. */}}
{{- define "lbd.volumes" -}}
- name: lbd-run
  emptyDir: {medium: Memory}
- name: lbd-state
  emptyDir: {}
{{- end -}}
