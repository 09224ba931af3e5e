{{/* Names: <release>-weavewave-<tier>, cut to the 63 characters Kubernetes allows. */}}
{{- define "weavewave.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "weavewave.tierName" -}}
{{- printf "%s-%s" (include "weavewave.fullname" .root) .tier -}}
{{- end -}}

{{- define "weavewave.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .tier }}
{{- end -}}

{{- define "weavewave.labels" -}}
{{ include "weavewave.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "weavewave.image" -}}
{{- $registry := .root.Values.image.registry -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image $tag -}}
{{- else -}}
{{- printf "%s:%s" .image $tag -}}
{{- end -}}
{{- end -}}

{{/* Pods as in the compose file: the images' non-root user, no privilege, read-only root. */}}
{{- define "weavewave.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "weavewave.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities: {drop: [ALL]}
{{- end -}}

{{/* SIGTERM drains for drainSeconds; the kubelet waits that plus a margin before SIGKILL. */}}
{{- define "weavewave.gracePeriod" -}}
{{- add .Values.drainSeconds 30 -}}
{{- end -}}

{{/* "true" when more than one gateway may run (replicas, or its autoscaler); else "". */}}
{{- define "weavewave.manyGateways" -}}
{{- if or (gt (int .Values.gateway.replicas) 1) (and (ne .Values.autoscaling.mode "none") .Values.autoscaling.gateway.enabled) -}}true{{- end -}}
{{- end -}}

{{/* The jobs volume's access modes: as set, else ReadWriteOnce for one gateway (what every
cluster offers) and ReadWriteMany for several (they share the files). */}}
{{- define "weavewave.jobsAccessModes" -}}
{{- if .Values.jobs.volume.accessModes -}}
{{- toYaml .Values.jobs.volume.accessModes -}}
{{- else if include "weavewave.manyGateways" . -}}
- ReadWriteMany
{{- else -}}
- ReadWriteOnce
{{- end -}}
{{- end -}}

{{/* Several gateways share jobs only through PostgreSQL: refuse SQLite behind more than one. */}}
{{- define "weavewave.checkJobs" -}}
{{- $many := include "weavewave.manyGateways" . -}}
{{- if and $many (not .Values.jobs.database.secretName) -}}
{{- fail "More than one gateway replica needs jobs.database.secretName (PostgreSQL): SQLite jobs belong to one process." -}}
{{- end -}}
{{- end -}}

{{/* The model tiers as a JSON list: the captioner, the composer, then one tier per entry of
moreComposers (`composer-<name>`), each entry's keys over the composer's values (its `env`
its own: another model's settings do not carry over) and its `autoscaling` over
autoscaling.composer. Every model template ranges over this one list. */}}
{{- define "weavewave.modelTiers" -}}
{{- $a := .Values.autoscaling -}}
{{- $tiers := list (dict "tier" "captioner" "prefix" "CAPTIONER" "values" .Values.captioner "scale" $a.captioner) (dict "tier" "composer" "prefix" "COMPOSER" "values" .Values.composer "scale" $a.composer) -}}
{{- $names := list .Values.composer.name -}}
{{- range $more := .Values.moreComposers -}}
{{- if has $more.name $names -}}
{{- fail (printf "moreComposers: %q is named twice (composer.name is %q)." $more.name $.Values.composer.name) -}}
{{- end -}}
{{- $names = append $names $more.name -}}
{{- $values := mergeOverwrite (deepCopy $.Values.composer) (omit (deepCopy $more) "autoscaling") -}}
{{- $_ := set $values "env" (deepCopy ($more.env | default dict)) -}}
{{- $scale := mergeOverwrite (deepCopy $a.composer) (deepCopy ($more.autoscaling | default dict)) -}}
{{- $tiers = append $tiers (dict "tier" (printf "composer-%s" $more.name) "prefix" "COMPOSER" "values" $values "scale" $scale) -}}
{{- end -}}
{{- toJson $tiers -}}
{{- end -}}

{{/* GATEWAY_COMPOSERS when more than one composer is deployed: name=url, the default first. */}}
{{- define "weavewave.namedComposers" -}}
{{- $named := list -}}
{{- range $m := include "weavewave.modelTiers" . | fromJsonArray -}}
{{- if eq $m.prefix "COMPOSER" -}}
{{- $url := printf "http://%s:%v" (include "weavewave.tierName" (dict "root" $ "tier" $m.tier)) (int $m.values.port) -}}
{{- $named = append $named (printf "%s=%s" $m.values.name $url) -}}
{{- end -}}
{{- end -}}
{{- join "," $named -}}
{{- end -}}
