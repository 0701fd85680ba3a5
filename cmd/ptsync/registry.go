package main

import (
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/registry"
	"github.com/ptsync/ptsync/sync"
)

// loadConfig loads the config file at path with this build's source types.
func loadConfig(path string) (*config.Config, error) {
	return config.Load(path, registry.Builtin().ConfigTypes())
}

// newSource builds one configured source. metrics may be nil. Owners are
// read only when a rule of cfg makes them team admins.
func newSource(cfg *config.Config, src config.Source, log *zap.Logger, metrics *sync.Metrics) (sources.Source, error) {
	opts := sources.Options{Log: log, ReadOwners: ownersWanted(cfg, src.Name)}
	if metrics != nil { // a nil *Metrics must not become a non-nil interface
		opts.Observer = metrics.SourceObserver(src.Name)
	}
	return registry.Builtin().New(src, opts)
}

// ownersWanted reports whether a teams: rule of source makes the group's
// owners admins.
func ownersWanted(cfg *config.Config, source string) bool {
	for _, r := range cfg.Teams {
		if r.Source == source && r.AdminsFromOwners {
			return true
		}
	}
	return false
}

// newPagerTreeClient builds the PagerTree client of the pagertree: block.
// metrics may be nil.
func newPagerTreeClient(cfg config.PagerTree, log *zap.Logger, metrics *sync.Metrics) (*pagertree.Client, error) {
	var obs pagertree.Observer
	if metrics != nil { // a nil *Metrics must not become a non-nil interface
		obs = metrics
	}
	return pagertree.New(pagertree.Config{
		API:               cfg.API,
		URL:               cfg.URL,
		Username:          cfg.Username,
		Password:          cfg.Password,
		APIKey:            cfg.APIKey,
		RequestsPerSecond: cfg.RequestsPerSecond,
		Concurrency:       cfg.Concurrency,
		Timeout:           cfg.Timeout,
		Observer:          obs,
		Logger:            log,
	})
}
