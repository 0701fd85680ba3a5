package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the programs the tests build once per run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ptsync-deploy-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// built builds a Go command once per test run, in module dir. The build
// cache makes every run after the first cheap.
type built struct {
	dir  string // "" for this module
	pkg  string
	once sync.Once
	path string
	err  error
	out  []byte
}

func (b *built) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		b.path = filepath.Join(binDir, filepath.Base(b.pkg))
		cmd := exec.Command("go", "build", "-o", b.path, b.pkg)
		cmd.Dir = b.dir
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", b.pkg, b.err, b.out)
	}
	return b.path
}

var (
	// helm is pinned in go.mod's tool directive, so every machine renders
	// the chart with the same Helm.
	helmCmd = &built{pkg: "helm.sh/helm/v3/cmd/helm"}
	// ptsync is built in its own module, with its own go.sum.
	ptsyncCmd = &built{dir: "..", pkg: "./cmd/ptsync"}
)

func helmBinary(t *testing.T) string   { return helmCmd.get(t) }
func ptsyncBinary(t *testing.T) string { return ptsyncCmd.get(t) }
