// Package registry lists the source types this build knows: for each, the
// constructor of its configuration block (with its defaults) and its
// factory. Adding a source type is one package under sources/ and one line
// here.
package registry

import (
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sources/google"
	"github.com/ptsync/ptsync/sources/ldap"
	"github.com/ptsync/ptsync/sources/msgraph"
	"github.com/ptsync/ptsync/sources/okta"
	"github.com/ptsync/ptsync/sources/scim"
)

// Type is one source type.
type Type struct {
	// Settings returns a new configuration block holding the defaults.
	Settings func() config.SourceSettings
	// New builds a source.
	New sources.Factory
}

// Registry maps type names (the sources[].type values) to their types.
type Registry map[string]Type

// Builtin is every source type of this build.
func Builtin() Registry {
	return Registry{
		"file":    {func() config.SourceSettings { return file.DefaultConfig() }, file.New},
		"google":  {func() config.SourceSettings { return google.DefaultConfig() }, google.New},
		"ldap":    {func() config.SourceSettings { return ldap.DefaultConfig() }, ldap.New},
		"msgraph": {func() config.SourceSettings { return msgraph.DefaultConfig() }, msgraph.New},
		"okta":    {func() config.SourceSettings { return okta.DefaultConfig() }, okta.New},
		"scim":    {func() config.SourceSettings { return scim.DefaultConfig() }, scim.New},
	}
}

// ConfigTypes is what config.Load needs to decode and check every block.
func (r Registry) ConfigTypes() config.SourceTypes {
	types := make(config.SourceTypes, len(r))
	for name, t := range r {
		types[name] = t.Settings
	}
	return types
}

// New builds the source src describes; its logger carries the source's name.
func (r Registry) New(src config.Source, opts sources.Options) (sources.Source, error) {
	t, ok := r[src.Type]
	if !ok {
		return nil, fmt.Errorf("source %q: unknown type %q (types: %v)", src.Name, src.Type, r.names())
	}
	opts.Log = opts.Logger().With(zap.String("source", src.Name))
	return t.New(src.Name, src.Settings, opts)
}

// names lists the types, sorted.
func (r Registry) names() []string {
	names := slices.Collect(maps.Keys(r))
	slices.Sort(names)
	return names
}
