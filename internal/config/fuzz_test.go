package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
)

// FuzzParse feeds Parse arbitrary bytes: it must never panic, must answer
// either a config that validates or Problems that each say something, and
// must keep secrets out of them. The seed corpus (the example and every
// testdata file) runs in plain `go test`.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add(uncommentSources(example))
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("x-a: &a {<<: *a}\n"))
	f.Add([]byte("x-a: &a [*a]\nsources: *a\n"))
	f.Add([]byte("pagertree: {<<: [&m {url: x}, *m]}\n"))

	lookup := lookupIn(exampleEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, "fuzz.yaml", lookup)
		if err == nil {
			if cfg == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", err)
			}
			return
		}
		var problems config.Problems
		if !errors.As(err, &problems) || len(problems) == 0 {
			t.Fatalf("error %T %q is not config.Problems", err, err)
		}
		for _, p := range problems {
			if p.Message == "" || p.File != "fuzz.yaml" {
				t.Fatalf("problem %+v lacks a message or its file", p)
			}
		}
	})
}
