package shiptest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratemon/ratemon/internal/config"
)

// manifests returns every Kubernetes object of deploy/kubernetes by kind
// (one of each kind is expected).
func manifests(t *testing.T) map[string]map[string]any {
	dir := filepath.Join(deployDir, "kubernetes")
	kust := one(t, filepath.Join(dir, "kustomization.yaml"))
	out := map[string]map[string]any{}
	for _, r := range toStrings(dig(t, kust, "resources")) {
		for _, d := range readYAML(t, filepath.Join(dir, r)) {
			m := d.(map[string]any)
			kind := str(t, m, "kind")
			require.NotContains(t, out, kind, "two objects of kind %s", kind)
			out[kind] = m
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, len(toStrings(dig(t, kust, "resources")))+1, "a manifest is missing from kustomization.yaml")
	return out
}

// TestKubernetes_objects checks that every object is there, in the one
// namespace, and that selectors match the pod labels.
func TestKubernetes_objects(t *testing.T) {
	objs := manifests(t)
	for _, k := range []string{"Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"} {
		require.Contains(t, objs, k)
	}
	ns := str(t, objs["Namespace"], "metadata", "name")
	for kind, o := range objs {
		if kind != "Namespace" {
			require.Equal(t, ns, str(t, o, "metadata", "namespace"), kind)
		}
	}
	labels := dig(t, objs["Deployment"], "spec", "template", "metadata", "labels")
	require.Equal(t, dig(t, objs["Deployment"], "spec", "selector", "matchLabels"), labels)
	require.Equal(t, dig(t, objs["Service"], "spec", "selector"), labels)
	require.Equal(t, dig(t, objs["PodDisruptionBudget"], "spec", "selector", "matchLabels"), labels)
	require.Equal(t, dig(t, objs["ServiceMonitor"], "spec", "selector", "matchLabels"), dig(t, objs["Service"], "metadata", "labels"))
	require.Equal(t, 2, dig(t, objs["Deployment"], "spec", "replicas"))
	require.Equal(t, 1, dig(t, objs["PodDisruptionBudget"], "spec", "minAvailable"))
}

// TestKubernetes_configMapLoads loads the embedded config strictly, as the
// daemon will, and checks what the other objects assume of it.
func TestKubernetes_configMapLoads(t *testing.T) {
	objs := manifests(t)
	data := str(t, objs["ConfigMap"], "data", "ratemon.yaml")
	cfg, err := config.Parse("configmap ratemon.yaml", []byte(data))
	require.NoError(t, err)
	require.True(t, cfg.Redis.Cluster(), "the manifests target a Redis Cluster")
	require.Equal(t, 3, cfg.NATS.Replicas, "the manifests target a JetStream cluster")
	require.Equal(t, defaultPort(t), portOf(t, cfg.HTTP.Addr))
	require.True(t, strings.HasPrefix(cfg.HTTP.Addr, "0.0.0.0:"), "probes reach the pod's address, not loopback")

	c := dig(t, objs["Deployment"], "spec", "template", "spec", "containers", 0)
	mount := str(t, c, "volumeMounts", 0, "mountPath")
	args := strings.Join(toStrings(dig(t, c, "args")), " ")
	require.Contains(t, args, "--config "+mount+"/ratemon.yaml")
	require.Equal(t, str(t, objs["ConfigMap"], "metadata", "name"),
		str(t, objs["Deployment"], "spec", "template", "spec", "volumes", 0, "configMap", "name"))
	for _, e := range dig(t, c, "env").([]any) {
		name := str(t, e, "name")
		require.True(t, knownEnv(name), "the Deployment sets %s, which no setting reads", name)
	}
}

// TestKubernetes_deployment checks ports, probes, resources and the
// security context of the daemon's pods.
func TestKubernetes_deployment(t *testing.T) {
	objs := manifests(t)
	pod := dig(t, objs["Deployment"], "spec", "template", "spec")
	c := dig(t, pod, "containers", 0)
	require.Equal(t, "http", str(t, c, "ports", 0, "name"))
	require.Equal(t, defaultPort(t), dig(t, c, "ports", 0, "containerPort"))
	require.Equal(t, "/readyz", str(t, c, "readinessProbe", "httpGet", "path"))
	require.Equal(t, "http", str(t, c, "readinessProbe", "httpGet", "port"))
	require.Equal(t, "/healthz", str(t, c, "livenessProbe", "httpGet", "path"))
	require.Equal(t, "http", str(t, c, "livenessProbe", "httpGet", "port"))
	require.NotEmpty(t, str(t, c, "resources", "requests", "cpu"))
	require.NotEmpty(t, str(t, c, "resources", "requests", "memory"))
	require.NotEmpty(t, str(t, c, "resources", "limits", "memory"))

	require.Equal(t, true, dig(t, pod, "securityContext", "runAsNonRoot"))
	require.Equal(t, 65532, dig(t, pod, "securityContext", "runAsUser"), "the distroless nonroot user")
	require.Equal(t, true, dig(t, c, "securityContext", "readOnlyRootFilesystem"))
	require.Equal(t, false, dig(t, c, "securityContext", "allowPrivilegeEscalation"))
	require.Equal(t, []any{"ALL"}, dig(t, c, "securityContext", "capabilities", "drop"))
	grace := dig(t, pod, "terminationGracePeriodSeconds").(int)
	require.Greater(t, grace, 15, "the grace period must exceed the daemon's 15s shutdown bound")

	require.Equal(t, "http", str(t, objs["Service"], "spec", "ports", 0, "targetPort"))
	require.Equal(t, defaultPort(t), dig(t, objs["Service"], "spec", "ports", 0, "port"))
	require.Equal(t, "http", str(t, objs["ServiceMonitor"], "spec", "endpoints", 0, "port"))
	require.Equal(t, "/metrics", str(t, objs["ServiceMonitor"], "spec", "endpoints", 0, "path"))
	// The ServiceMonitor's job label yields job="ratemon", which the rules
	// and the dashboard expect.
	jl := str(t, objs["ServiceMonitor"], "spec", "jobLabel")
	require.Equal(t, "ratemon", str(t, objs["Service"], "metadata", "labels", jl))

	rules, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "rules", "ratemon.rules.yml"))
	require.NoError(t, err)
	require.Contains(t, string(rules), `job="ratemon"`)
}
