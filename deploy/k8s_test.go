package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ptsync/ptsync/internal/testenv"
)

const chartDir = "helm/ptsync"

// valueSets are the installs the chart is linted, rendered and checked
// in: both modes, each with its options off and on.
var valueSets = []struct {
	name string
	set  []string
}{
	{"daemon defaults", nil},
	{"daemon with everything", []string{
		"serviceMonitor.enabled=true", "prometheusRule.enabled=true",
		"secret.existingSecret=ptsync-credentials", "persistence.existingClaim=ptsync-data",
		"resources.limits.memory=1Gi", "imagePullSecrets[0].name=registry",
		"nodeSelector.kubernetes\\.io/os=linux", "extraVolumes[0].name=ca",
		"extraVolumes[0].secret.secretName=corp-ca", "extraVolumeMounts[0].name=ca",
		"extraVolumeMounts[0].mountPath=/etc/ptsync-ca", "config.log.level=debug",
	}},
	{"daemon without state", []string{"persistence.enabled=false", "service.enabled=false"}},
	{"cronjob defaults", []string{"mode=cronjob"}},
	{"cronjob with everything", []string{
		"mode=cronjob", "prometheusRule.enabled=true", "cronjob.timeZone=Europe/Berlin",
		"cronjob.args[0]=--allow-destructive", "persistence.enabled=false", "goMemLimitPercent=90",
	}},
}

// object is one rendered manifest, decoded strictly into its Kubernetes type.
type object struct {
	kind, name string
	raw        []byte
	typed      any
}

func TestChartLintsAndRendersValidObjects(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			for _, s := range vs.set {
				args = append(args, "--set", s)
			}
			if out, err := helm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			objs := render(t, "ptsync", vs.set...)
			mode := "daemon"
			if strings.Contains(strings.Join(vs.set, " "), "mode=cronjob") {
				mode = "cronjob"
			}
			checkWorkload(t, objs, mode, vs.set)
			checkConfig(t, objs, mode, vs.set)
		})
	}
}

// checkWorkload checks what the issue asks of every install: one
// replica that never overlaps itself, non-root on a read-only root, no
// capabilities, and GOMEMLIMIT tied to the memory limit.
func checkWorkload(t *testing.T, objs []object, mode string, set []string) {
	var pod corev1.PodSpec
	var podAnnotations map[string]string
	switch mode {
	case "daemon":
		d := only[*appsv1.Deployment](t, objs)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("deployment: replicas %v, strategy %q; want 1 and Recreate", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		pod, podAnnotations = d.Spec.Template.Spec, d.Spec.Template.Annotations
		c := pod.Containers[0]
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("probes: readiness %+v, liveness %+v", c.ReadinessProbe, c.LivenessProbe)
		}
		if want := []string{"run", "--config", "/etc/ptsync/ptsync.yaml"}; !reflect.DeepEqual(c.Args, want) {
			t.Errorf("args %q, want %q", c.Args, want)
		}
		none[*batchv1.CronJob](t, objs)
	case "cronjob":
		cj := only[*batchv1.CronJob](t, objs)
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("cronjob concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
		}
		pod, podAnnotations = cj.Spec.JobTemplate.Spec.Template.Spec, cj.Spec.JobTemplate.Spec.Template.Annotations
		if pod.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("restartPolicy %q, want Never", pod.RestartPolicy)
		}
		if args := pod.Containers[0].Args; len(args) < 3 || args[0] != "sync" {
			t.Errorf("args %q, want ptsync sync --config ...", args)
		}
		if pod.Containers[0].ReadinessProbe != nil {
			t.Error("a CronJob's pod has a readiness probe: it serves no /readyz")
		}
		none[*appsv1.Deployment](t, objs)
		none[*corev1.Service](t, objs)
		none[*monitoringv1.ServiceMonitor](t, objs)
	}
	if podAnnotations["checksum/config"] == "" {
		t.Error("pod template has no checksum/config annotation: a config change would not roll the pod")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted: ptsync never talks to the Kubernetes API")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod does not set runAsNonRoot")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v: want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	limit := c.Resources.Limits.Memory().Value()
	percent := int64(80)
	for _, s := range set {
		if v, ok := strings.CutPrefix(s, "goMemLimitPercent="); ok {
			fmt.Sscan(v, &percent)
		}
	}
	want := fmt.Sprintf("%dMiB", limit/(1<<20)*percent/100)
	if got := env(c, "GOMEMLIMIT"); got != want {
		t.Errorf("GOMEMLIMIT %q with a %d MiB limit, want %q", got, limit>>20, want)
	}
	// Every volume the container mounts exists, and the state volume is
	// there exactly when persistence is on.
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Errorf("mount %q has no volume", m.Name)
		}
	}
	persistent := !slices.Contains(set, "persistence.enabled=false")
	if volumes["state"] != persistent {
		t.Errorf("state volume present %v, want %v", volumes["state"], persistent)
	}
	if persistent && !slices.Contains(set, "persistence.existingClaim=ptsync-data") {
		only[*corev1.PersistentVolumeClaim](t, objs)
	} else {
		none[*corev1.PersistentVolumeClaim](t, objs)
	}
	if slices.Contains(set, "secret.existingSecret=ptsync-credentials") {
		none[*corev1.Secret](t, objs)
		if ref := c.EnvFrom[0].SecretRef; ref == nil || ref.Name != "ptsync-credentials" {
			t.Errorf("envFrom %+v, want the existing secret", c.EnvFrom)
		}
	}
}

// checkConfig runs the rendered ptsync.yaml through `ptsync validate`, the
// check the pod would run at start, with the Secret's variables set.
func checkConfig(t *testing.T, objs []object, mode string, set []string) {
	cm := only[*corev1.ConfigMap](t, objs)
	text := cm.Data["ptsync.yaml"]
	var config struct {
		Metrics struct{ Listen string }
		State   struct{ Dir string }
	}
	if err := yaml.Unmarshal([]byte(text), &config); err != nil {
		t.Fatalf("ptsync.yaml: %v", err)
	}
	if want := map[string]string{"daemon": "0.0.0.0:9464", "cronjob": ""}[mode]; config.Metrics.Listen != want {
		t.Errorf("metrics.listen %q, want %q", config.Metrics.Listen, want)
	}
	if want := !slices.Contains(set, "persistence.enabled=false"); (config.State.Dir == "/var/lib/ptsync") != want {
		t.Errorf("state.dir %q with persistence %v", config.State.Dir, want)
	}
	path := filepath.Join(t.TempDir(), "ptsync.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ptsyncBinary(t), "validate", "--config", path)
	cmd.Env = append(os.Environ(), "PAGERTREE_USERNAME=admin@example.com", "PAGERTREE_PASSWORD=x", "LDAP_PASSWORD=x")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ptsync validate on the rendered config: %v\n%s\n%s", err, out, text)
	}
}

func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"persistance.enabled=false", "persistance"},
		{"mode=deamon", "mode"},
		{"resources.limits.memory=512M", "memory"},
		{"goMemLimitPercent=120", "goMemLimitPercent"},
		{"config.metrics.listen=0.0.0.0:9100", "listen"},
		{"config.state.dir=/tmp", "dir"},
		{"serviceMonitor.intervall=30s", "intervall"},
	} {
		out, err := helm(t, "template", "ptsync", chartDir, "--set", tc.set)
		if err == nil {
			t.Errorf("--set %s rendered; want a refusal", tc.set)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("--set %s: the error does not name %q:\n%s", tc.set, tc.want, out)
		}
	}
}

// The chart's rules in daemon mode are deploy/prometheus/alerts.yaml, so
// alerts_test.yaml proves them; the CronJob's own rules have their tests
// in testdata.
func TestPrometheusRules(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	for _, tc := range []struct {
		mode, tests string
	}{
		{"daemon", "prometheus/alerts_test.yaml"},
		{"cronjob", "testdata/cronjob_alerts_test.yaml"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			objs := render(t, "ptsync", "mode="+tc.mode, "prometheusRule.enabled=true")
			rule := only[*monitoringv1.PrometheusRule](t, objs)
			rules, err := yaml.Marshal(rule.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mode == "daemon" {
				assertSameRules(t, rule.Spec, "prometheus/alerts.yaml")
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o600); err != nil {
				t.Fatal(err)
			}
			unit, err := os.ReadFile(tc.tests)
			if err != nil {
				t.Fatal(err)
			}
			var tests map[string]any
			if err := yaml.Unmarshal(unit, &tests); err != nil {
				t.Fatal(err)
			}
			tests["rule_files"] = []string{"rules.yaml"}
			unit, err = yaml.Marshal(tests)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), unit, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
				cmd := exec.Command(promtool, args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("promtool %v: %v\n%s\n%s", args, err, out, rules)
				}
			}
		})
	}
}

func assertSameRules(t *testing.T, spec monitoringv1.PrometheusRuleSpec, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file monitoringv1.PrometheusRuleSpec
	if err := decodeStrict(data, &file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !reflect.DeepEqual(spec, file) {
		t.Errorf("the chart's PrometheusRule differs from %s", path)
	}
}

// The plain manifests are the chart's default render without Helm's own
// labels and the config checksum; they may leave objects out (the Secret
// is kubectl's to create) but not differ in one they share.
func TestPlainManifestsMatchTheChart(t *testing.T) {
	data, err := os.ReadFile("kubernetes/ptsync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plain := decodeAll(t, data)
	rendered := map[string]object{}
	for _, o := range render(t, "ptsync") {
		rendered[o.kind+"/"+o.name] = o
	}
	for _, p := range plain {
		r, ok := rendered[p.kind+"/"+p.name]
		if !ok {
			t.Errorf("%s/%s is in the plain manifest but not in the chart's default render", p.kind, p.name)
			continue
		}
		got, want := normalize(t, p.raw), normalize(t, r.raw)
		if !reflect.DeepEqual(got, want) {
			g, _ := yaml.Marshal(got)
			w, _ := yaml.Marshal(want)
			t.Errorf("%s/%s differs from the chart's default render:\nplain:\n%s\nchart:\n%s", p.kind, p.name, g, w)
		}
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim"} {
		if _, ok := rendered[kind+"/ptsync"]; !ok && kind != "PersistentVolumeClaim" {
			t.Errorf("the default render has no %s/ptsync", kind)
		}
	}
}

// normalize drops what only Helm sets and parses ConfigMap YAML values, so
// a config differing only in comments or key order compares equal.
func normalize(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "checksum/config"} {
				delete(v, k)
			}
			for k, child := range v {
				walk(child)
				if m, ok := child.(map[string]any); ok && len(m) == 0 && (k == "labels" || k == "annotations") {
					delete(v, k)
				}
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(obj)
	if obj["kind"] == "ConfigMap" {
		data, _ := obj["data"].(map[string]any)
		for k, v := range data {
			if s, ok := v.(string); ok && strings.HasSuffix(k, ".yaml") {
				var parsed any
				if err := yaml.Unmarshal([]byte(s), &parsed); err != nil {
					t.Fatalf("ConfigMap %s: %v", k, err)
				}
				data[k] = parsed
			}
		}
	}
	return obj
}

// render runs helm template and decodes every object strictly: a field
// Kubernetes does not know fails the test.
func render(t *testing.T, release string, set ...string) []object {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", "oncall"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, out)
	}
	return decodeAll(t, []byte(out))
}

func decodeAll(t *testing.T, data []byte) []object {
	t.Helper()
	var objs []object
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue // a comment-only document
		}
		var typed any
		switch meta.Kind {
		case "ConfigMap":
			typed = &corev1.ConfigMap{}
		case "Secret":
			typed = &corev1.Secret{}
		case "Service":
			typed = &corev1.Service{}
		case "PersistentVolumeClaim":
			typed = &corev1.PersistentVolumeClaim{}
		case "Deployment":
			typed = &appsv1.Deployment{}
		case "CronJob":
			typed = &batchv1.CronJob{}
		case "ServiceMonitor":
			typed = &monitoringv1.ServiceMonitor{}
		case "PrometheusRule":
			typed = &monitoringv1.PrometheusRule{}
		default:
			t.Fatalf("no Kubernetes type known for kind %q", meta.Kind)
		}
		if err := decodeStrict(doc, typed); err != nil {
			t.Errorf("%s/%s does not decode strictly: %v", meta.Kind, meta.Metadata.Name, err)
			continue
		}
		objs = append(objs, object{meta.Kind, meta.Metadata.Name, doc, typed})
	}
	return objs
}

// decodeStrict decodes YAML as the API server does: field names are case
// sensitive (encoding/json would take readOnlyRootFileSystem for
// readOnlyRootFilesystem), and an unknown or repeated field is an error.
func decodeStrict(doc []byte, v any) error {
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(data, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// only returns the one object of type T, failing unless there is exactly one.
func only[T any](t *testing.T, objs []object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.typed.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

func none[T any](t *testing.T, objs []object) {
	t.Helper()
	for _, o := range objs {
		if _, ok := o.typed.(T); ok {
			t.Errorf("unexpected %s/%s", o.kind, o.name)
		}
	}
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// helm runs the pinned Helm and returns its standard output, or its
// standard error when it fails. (Helm warns on stderr that
// files/alerts.yaml is a link; that is expected.)
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// One chart version per ptsync version: a release bumps both together.
func TestChartVersionIsAppVersion(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.Version == "" || chart.Version != chart.AppVersion {
		t.Errorf("Chart.yaml: version %q, appVersion %q; want the same ptsync version", chart.Version, chart.AppVersion)
	}
}
