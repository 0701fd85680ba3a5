package main

import (
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sources/ldap"
	"github.com/ptsync/ptsync/sync"
)

// sourceRegistry lists the source types this build supports. Every command
// that builds sources (validate, plan, sync, apply, explain, run) uses it.
func sourceRegistry() sources.Registry {
	return sources.Registry{
		config.TypeFile: file.New,
		config.TypeLDAP: ldap.New,
	}
}

// newPagerTreeClient builds the PagerTree client of the pagertree: block.
// metrics may be nil.
func newPagerTreeClient(cfg config.PagerTree, log *zap.Logger, metrics *sync.Metrics) (*pagertree.Client, error) {
	var obs pagertree.Observer
	if metrics != nil { // a nil *Metrics must not become a non-nil interface
		obs = metrics
	}
	return pagertree.New(pagertree.Config{
		URL:               cfg.URL,
		Username:          cfg.Username,
		Password:          cfg.Password,
		RequestsPerSecond: cfg.RequestsPerSecond,
		Concurrency:       cfg.Concurrency,
		Timeout:           cfg.Timeout,
		Observer:          obs,
		Logger:            log,
	})
}
