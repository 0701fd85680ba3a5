package sync

import (
	"errors"
	"testing"
)

func TestCheckOrigin(t *testing.T) {
	here := PlanOrigin{PagerTreeURL: "https://api.pagertree.com", ConfigHash: "sha256:" + "ab12cd34ef56" + "00"}
	tests := []struct {
		name  string
		saved PlanOrigin
		want  string // "" when accepted
	}{
		{"same", here, ""},
		{"a trailing slash", PlanOrigin{PagerTreeURL: here.PagerTreeURL + "/", ConfigHash: here.ConfigHash, AllowDestructive: true}, ""},
		{"no origin", PlanOrigin{}, "saved plan refused; nothing was written: it does not say which PagerTree and configuration it was made for; make a new plan with ptsync plan --out"},
		{"another URL", PlanOrigin{PagerTreeURL: "https://staging.example.com", ConfigHash: here.ConfigHash},
			"saved plan refused; nothing was written: it was made for PagerTree https://staging.example.com, and this configuration's pagertree.url is https://api.pagertree.com; apply it with the configuration it was made with, or make a new plan"},
		{"another configuration", PlanOrigin{PagerTreeURL: here.PagerTreeURL, ConfigHash: "sha256:99887766554433"},
			"saved plan refused; nothing was written: it was made with another configuration (sha256:998877665544, this one is sha256:ab12cd34ef56); apply it with the configuration it was made with, or make a new plan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOrigin(tt.saved, here)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, ErrPlanRefused)):
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}
