package config

import "time"

// Every top-level default lives in this file; each source type's defaults
// live in its package (SourceTypes). Parse decodes the file over these
// values, so a key that is present always wins, even when it is false, 0
// or "" (nested: false, max_destructive: 0).

// Default returns the top-level defaults: a file that sets only the
// required keys gets these.
func Default() Config {
	return Config{
		Schedule: "@every 15m",
		PagerTree: PagerTree{
			API:               APIv3,
			URL:               "https://api.pagertree.com",
			RequestsPerSecond: 10,
			Concurrency:       4,
			Timeout:           30 * time.Second,
		},
		Users: Users{Scope: ScopeTeamMembers},
		Safety: Safety{
			MaxDestructive:        25,
			MaxDestructivePercent: 20,
			MinSourceUsers:        1,
			MaxSourceDropPercent:  30,
		},
		State:        State{KeepReports: 50},
		CycleTimeout: 30 * time.Minute,
		Metrics:      Metrics{Listen: "127.0.0.1:9464"},
		Status:       Status{Enabled: true, Auth: StatusAuthNone},
		Watch:        Watch{Debounce: 5 * time.Second, MaxDelay: 60 * time.Second},
		Log:          Log{Level: "info", Format: "json"},
	}
}

// defaultTeamRule is what each teams[] entry starts from.
func defaultTeamRule() TeamRule {
	return TeamRule{Name: "{{ .Name }}", OnMissing: OnMissingKeep}
}
