package config_test

import (
	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources/registry"
)

// types are the source types of this build, as cmd/ptsync loads with.
var types = registry.Builtin().ConfigTypes()

func parse(data []byte, path string, lookupEnv func(string) (string, bool)) (*config.Config, error) {
	return config.Parse(data, path, lookupEnv, types)
}

func load(path string) (*config.Config, error) {
	return config.Load(path, types)
}

// lookupIn is a lookupEnv over a fixed environment.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}
