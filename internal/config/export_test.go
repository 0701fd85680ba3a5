package config

// Hooks for the external tests of this package (package config_test, which
// may import the source packages that register their blocks).

var (
	ExpandEnv       = expandEnv
	MaxSecretSize   = maxSecretSize
	DefaultTeamRule = defaultTeamRule
)

// StripInternal clears what Parse keeps for itself, so a parsed Config can
// be compared with reflect.DeepEqual.
func StripInternal(c *Config) {
	c.pos, c.types = nil, nil
}

// Keys lists every key path the file set.
func Keys(c *Config) []string {
	keys := make([]string, 0, len(c.pos))
	for k := range c.pos {
		keys = append(keys, k)
	}
	return keys
}

// SetTypes gives a Config built in code the source types Parse would have.
func SetTypes(c *Config, types SourceTypes) { c.types = types }
