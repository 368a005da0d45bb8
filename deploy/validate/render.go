package validate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// KubeVersion is a Kubernetes version to render the chart for, to show
// that its rendering does not depend on it (helm built with `go install`
// otherwise assumes v1.20).
const KubeVersion = "1.33.0"

// Kustomize builds the kustomization in dir, as `kubectl kustomize` does.
func Kustomize(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return rm.AsYaml()
}

// Helm runs the helm binary with args and an empty, private helm home, and
// returns its standard output.
func Helm(helm, home string, args ...string) ([]byte, error) {
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+home+"/cache",
		"HELM_CONFIG_HOME="+home+"/config",
		"HELM_DATA_HOME="+home+"/data",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %v: %w\n%s%s", args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}
