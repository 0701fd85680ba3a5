// Package pagertree is a client for the PagerTree REST API: v3, described
// in the seed reference (login, users and teams), and v4 (an API key,
// account users and teams; types_v4.go). It knows nothing of directories
// or sync.
package pagertree

import "github.com/ptsync/ptsync/internal/httpx"

// User is a PagerTree user. Fields the API returns that ptsync never reads
// (preferences, verification stamps) are not modelled.
type User struct {
	ID        string `json:"id"`
	SID       string `json:"sid,omitempty"`
	CreatedAt string `json:"createdAt,omitempty"`
	UpdatedAt string `json:"updatedAt,omitempty"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Phone     string `json:"phone,omitempty"`
	Roles     Roles  `json:"roles"`
}

// Roles is the user's role hash.
type Roles struct {
	Admin        bool `json:"admin,omitempty"`
	AdminBilling bool `json:"admin_billing,omitempty"`
	Broadcast    bool `json:"broadcast,omitempty"`
}

// Team is a PagerTree team.
type Team struct {
	ID            string   `json:"id"`
	SID           string   `json:"sid,omitempty"`
	CreatedAt     string   `json:"createdAt,omitempty"`
	UpdatedAt     string   `json:"updatedAt,omitempty"`
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	MemberUserIDs []string `json:"member_user_ids"`
	ScheduleID    string   `json:"schedule_id,omitempty"`
}

// UserInput is the body of a user create.
type UserInput struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone,omitempty"`
}

// UserUpdate is the body of a user PUT: only non-nil fields are sent.
type UserUpdate struct {
	Name  *string `json:"name,omitempty"`
	Phone *string `json:"phone,omitempty"`
}

// TeamInput is the body of a team create.
type TeamInput struct {
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	MemberUserIDs []string `json:"member_user_ids,omitempty"`
}

// TeamUpdate is the body of a team PUT: only non-nil fields are sent, so a
// team's schedule_id and anything else ptsync does not own is never written.
type TeamUpdate struct {
	Name          *string   `json:"name,omitempty"`
	Description   *string   `json:"description,omitempty"`
	MemberUserIDs *[]string `json:"member_user_ids,omitempty"`
}

// List is the envelope of every list response.
type List[T any] struct {
	Data       []T  `json:"data"`
	HasMore    bool `json:"has_more"`
	TotalCount int  `json:"total_count"`
}

// ErrorBody is the seed's error shape: {"errors":[{"message":"..."}]}.
type ErrorBody struct {
	Errors []ErrorMessage `json:"errors"`
}

// ErrorMessage is one entry of ErrorBody.
type ErrorMessage struct {
	Message string `json:"message"`
}

// Observer receives one call per HTTP request and per retry, so the sync
// layer can turn them into metrics without this package knowing Prometheus:
// ObserveRequest(method, route, code, duration) with route the template
// ("/user/:id") and code the HTTP status or 0 when no response arrived,
// ObserveRetry(reason) with reason "429", "5xx", "transport" or "401".
type Observer = httpx.Observer
