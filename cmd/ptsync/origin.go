package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sync"
)

// planOrigin is where a plan made with cfg is made: the PagerTree it reads
// and the configuration, hashed without its secrets, so that apply can
// refuse a plan made for another account or with another configuration.
func planOrigin(cfg *config.Config) (sync.PlanOrigin, error) {
	hash, err := configHash(cfg)
	if err != nil {
		return sync.PlanOrigin{}, err
	}
	return sync.PlanOrigin{PagerTreeURL: cfg.PagerTree.URL, ConfigHash: hash}, nil
}

// configHash is a SHA-256 of the effective configuration (defaults filled,
// ${VAR}s expanded, every source's block included) with every secret and
// secret file left out, so rotating a password keeps a saved plan valid
// and the hash says nothing about a secret. Where the file lives is left
// out too: the same configuration is the same wherever it is read from.
func configHash(cfg *config.Config) (string, error) {
	c := cfg.WithoutSecrets()
	c.Path = ""
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("hash the configuration: %w", err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
