// Package sync turns source snapshots into a desired PagerTree state, plans
// the changes against the current state (pure), keeps them within the
// safety limits, and applies them (the one place that writes).
package sync

import "context"

// Op is what a change does.
type Op string

// Ops, in the words of the plan output.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Kind is what a change acts on.
type Kind string

// Kinds.
const (
	KindUser Kind = "user"
	KindTeam Kind = "team"
)

// AccountUser is a PagerTree user in sync's own terms, so another API
// version's client can slot in behind PagerTree without the engine changing.
type AccountUser struct {
	ID    string
	Email string // the primary address
	// Emails are the user's other addresses (v4 users may have several);
	// a directory email matches the user on any of them.
	Emails []string
	Name   string
	Phone  string
	Admin  bool // account admins are never changed or deleted
	// AccountID is the account the object says it belongs to (v4 objects
	// carry one; empty on v3).
	AccountID string
	// Invited is a user created for a person who has a PagerTree login
	// elsewhere and has not yet accepted the invitation: they exist (and
	// are never created again), and the plan says they are pending.
	Invited bool
}

// AccountTeam is a PagerTree team in sync's own terms.
type AccountTeam struct {
	ID          string
	Name        string
	Description string   // carries ptsync's ownership marker on managed teams
	MemberIDs   []string // PagerTree user ids
	AdminIDs    []string // the team's admins (v4), PagerTree user ids
	AccountID   string   // as on AccountUser
}

// Current is the PagerTree account as read at the start of a run.
type Current struct {
	Users []AccountUser
	Teams []AccountTeam
	// AccountID is the account every listed object carries (v4), or empty.
	AccountID string
}

// NewUser is the body of a user create.
type NewUser struct{ Email, Name, Phone string }

// UserPatch is a user update; nil fields are not sent.
type UserPatch struct{ Name, Phone *string }

// NewTeam is the body of a team create.
type NewTeam struct {
	Name, Description string
	MemberIDs         []string
	AdminIDs          []string // nil where teams have no admins (v3)
}

// TeamPatch is a team update; nil fields are not sent, so a team's schedule
// and anything ptsync does not own is never written.
type TeamPatch struct {
	Name, Description *string
	MemberIDs         *[]string
	AdminIDs          *[]string
}

// Reader lists the account. Implementations fetch every page.
type Reader interface {
	ListUsers(ctx context.Context) ([]AccountUser, error)
	ListTeams(ctx context.Context) ([]AccountTeam, error)
}

// Writer is every PagerTree write Apply makes. Only Apply calls it.
type Writer interface {
	CreateUser(ctx context.Context, u NewUser) (AccountUser, error)
	UpdateUser(ctx context.Context, id string, p UserPatch) error
	DeleteUser(ctx context.Context, id string) error
	CreateTeam(ctx context.Context, t NewTeam) (AccountTeam, error)
	UpdateTeam(ctx context.Context, id string, p TeamPatch) error
	DeleteTeam(ctx context.Context, id string) error
}

// PagerTree is the account as the engine sees it.
type PagerTree interface {
	Reader
	Writer
}

// FieldChange is one owned field that differs.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Change is one PagerTree write.
type Change struct {
	Op   Op   `json:"op"`
	Kind Kind `json:"kind"`
	// Name is the user's email (lower-cased) or the team's name (the new
	// name for a rename).
	Name string `json:"name"`
	// ID is the PagerTree id of the object updated or deleted.
	ID string `json:"id,omitempty"`

	// User create/update: the wanted name and phone (E.164).
	UserName  string `json:"user_name,omitempty"`
	UserPhone string `json:"user_phone,omitempty"`

	// Team create/update: Description is the marker to write (set on create
	// and adoption); Members is the full wanted member set as lower-cased
	// emails, Apply resolves them to ids (users created earlier in the same
	// run included). MembersSet says whether membership is written at all.
	Description    string   `json:"description,omitempty"`
	Members        []string `json:"members,omitempty"`
	MembersSet     bool     `json:"members_set,omitempty"`
	MembersAdded   []string `json:"members_added,omitempty"`
	MembersRemoved []string `json:"members_removed,omitempty"`
	// KeepIDs are the team's current member ids that ptsync cannot match
	// to an email (no listed user has them, or that user has no email).
	// They are left out of the diff but written back with the members, so
	// a write never removes what the plan did not count: a user the
	// listing missed is a real person.
	KeepIDs []string `json:"keep_ids,omitempty"`
	// Admins is the full wanted admin set (emails) of a team whose admins
	// are written (AdminsSet); AdminsAdded and AdminsRemoved show the
	// difference, and KeepAdminIDs are current admin ids no listed user
	// has, written back like KeepIDs. Only v4 teams have admins.
	Admins        []string `json:"admins,omitempty"`
	AdminsSet     bool     `json:"admins_set,omitempty"`
	AdminsAdded   []string `json:"admins_added,omitempty"`
	AdminsRemoved []string `json:"admins_removed,omitempty"`
	KeepAdminIDs  []string `json:"keep_admin_ids,omitempty"`

	// Fields lists each owned field that changes (update), for display.
	Fields []FieldChange `json:"fields,omitempty"`

	// Destructive counts what this change destroys: 1 for a delete, one per
	// member removed.
	Destructive int `json:"destructive,omitempty"`
	// Reason says why, for plan output and explain ("left the directory").
	Reason string `json:"reason,omitempty"`
	// WithheldReason says why a withheld change is not applied in this
	// run; empty on changes that are applied.
	WithheldReason string `json:"withheld_reason,omitempty"`
}

// Conflict is a wanted team the plan leaves alone.
type Conflict struct {
	Team string `json:"team,omitempty"`
	// User is the email of PagerTree users ptsync cannot tell apart; set
	// instead of Team.
	User   string `json:"user,omitempty"`
	Reason string `json:"reason"`
}

// Subject names what the conflict leaves alone: "team NAME" or "user EMAIL".
func (c Conflict) Subject() string {
	if c.User != "" {
		return "user " + c.User
	}
	return "team " + c.Team
}

// PlanOrigin is where and how a plan was made. A saved plan is applied only
// against the PagerTree and with the configuration it was made for, and
// under the same safety limits.
type PlanOrigin struct {
	// PagerTreeURL is pagertree.url.
	PagerTreeURL string `json:"pagertree_url"`
	// ConfigHash is a SHA-256 of the effective configuration with every
	// secret left out ("sha256:<hex>").
	ConfigHash string `json:"config_hash"`
	// AllowDestructive records --allow-destructive: the plan was made
	// without the safety limits.
	AllowDestructive bool `json:"allow_destructive"`
	// AccountID is the account the listed objects carried (v4): a plan is
	// applied only to that account, even behind the same URL.
	AccountID string `json:"account_id,omitempty"`
}
