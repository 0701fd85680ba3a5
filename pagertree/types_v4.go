package pagertree

import (
	"encoding/json"
	"fmt"
)

// The v4 API (PagerTree/pt4-docusaurus, docs/api): a Bearer key, routes
// under /api/v4, people as account users with nested user, emails and
// phones, teams with member and admin account users. Every object carries
// the common attributes (docs/api/common-model-attributes.md).

// APIPrefix is the path every v4 route starts with.
const APIPrefix = "/api/v4"

// Common are the attributes every v4 object has.
type Common struct {
	ID        string `json:"id"` // a ULID
	PrefixID  string `json:"prefix_id,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	TinyID    int    `json:"tiny_id,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// AccountUser is a person's membership of the account (docs/api/account-users.md).
type AccountUser struct {
	Common
	Roles              AccountRoles `json:"roles"`
	NotificationRuleID string       `json:"notification_rule_id,omitempty"`
	User               Person       `json:"user"`
	// Invited is true while the person, who already has a PagerTree login
	// in another account, has not accepted the invitation a create sent.
	// The docs describe the invitation but not how an account user shows
	// it; ptsync reads this field and otherwise treats the account user as
	// any other (it exists, so it is never created twice).
	Invited bool `json:"invited,omitempty"`
}

// AccountRoles is an account user's roles hash.
type AccountRoles struct {
	Admin        bool `json:"admin,omitempty"`
	Billing      bool `json:"billing,omitempty"`
	Broadcaster  bool `json:"broadcaster,omitempty"`
	Communicator bool `json:"communicator,omitempty"`
}

// Person is the user an account user stands for (docs/api/users.md).
type Person struct {
	ID       string  `json:"id"`
	PrefixID string  `json:"prefix_id,omitempty"`
	Name     string  `json:"name"`
	TimeZone string  `json:"time_zone,omitempty"`
	Emails   []Email `json:"emails"`
	Phones   []Phone `json:"phones"`
}

// Email is one of a person's addresses.
type Email struct {
	ID      string   `json:"id"`
	Email   string   `json:"email"`
	Primary FlexBool `json:"primary"`
}

// Phone is one of a person's numbers, in E.164.
type Phone struct {
	ID       string   `json:"id"`
	PrefixID string   `json:"prefix_id,omitempty"`
	Phone    string   `json:"phone"`
	Primary  FlexBool `json:"primary"`
	Country  string   `json:"country,omitempty"`
	Blocked  bool     `json:"blocked,omitempty"`
}

// FlexBool is a boolean the docs type loosely ("primary" is listed as
// string[] and described as a boolean): it reads true, false, "true" and
// "false", and writes a JSON boolean.
type FlexBool bool

// UnmarshalJSON reads a JSON boolean, or a string holding one.
func (b *FlexBool) UnmarshalJSON(data []byte) error {
	var v bool
	if err := json.Unmarshal(data, &v); err == nil {
		*b = FlexBool(v)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("primary: want a boolean, got %s", data)
	}
	switch s {
	case "true":
		*b = true
	case "false", "":
		*b = false
	default:
		return fmt.Errorf("primary: want a boolean, got %q", s)
	}
	return nil
}

// PrimaryEmail is the person's primary address, else the first one.
func (p Person) PrimaryEmail() string {
	for _, e := range p.Emails {
		if e.Primary {
			return e.Email
		}
	}
	if len(p.Emails) > 0 {
		return p.Emails[0].Email
	}
	return ""
}

// PrimaryPhone is the person's primary number, else the first one.
func (p Person) PrimaryPhone() (Phone, bool) {
	for _, ph := range p.Phones {
		if ph.Primary {
			return ph, true
		}
	}
	if len(p.Phones) > 0 {
		return p.Phones[0], true
	}
	return Phone{}, false
}

// AccountUserInput is the body of POST /account_users: name and one email
// are required.
type AccountUserInput struct {
	User PersonAttributes `json:"user_attributes"`
}

// AccountUserUpdate is the body of PUT /account_users/:id. Nested lists
// are changed entry by entry: an entry with an id changes that entry, one
// without adds one, one with Destroy removes it.
type AccountUserUpdate struct {
	User PersonAttributes `json:"user_attributes"`
}

// PersonAttributes are a user's nested attributes. ID (the user's id, not
// the account user's) makes an update change the person rather than make
// another.
type PersonAttributes struct {
	ID     string            `json:"id,omitempty"`
	Name   *string           `json:"name,omitempty"`
	Emails []EmailAttributes `json:"emails_attributes,omitempty"`
	Phones []PhoneAttributes `json:"phones_attributes,omitempty"`
}

// EmailAttributes is one entry of emails_attributes.
type EmailAttributes struct {
	ID      string `json:"id,omitempty"`
	Email   string `json:"email,omitempty"`
	Primary bool   `json:"primary,omitempty"`
	Destroy bool   `json:"_destroy,omitempty"`
}

// PhoneAttributes is one entry of phones_attributes.
type PhoneAttributes struct {
	ID      string `json:"id,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Primary bool   `json:"primary,omitempty"`
	Destroy bool   `json:"_destroy,omitempty"`
}

// TeamV4 is a v4 team (docs/api/teams.md). It always has at least one
// member and one admin; PagerTree makes its schedule and escalation policy.
type TeamV4 struct {
	Common
	Name                 string   `json:"name"`
	Notes                string   `json:"notes,omitempty"`
	MemberAccountUserIDs []string `json:"member_account_user_ids"`
	AdminAccountUserIDs  []string `json:"admin_account_user_ids"`
	ScheduleID           string   `json:"schedule_id,omitempty"`
	EscalationPolicyID   string   `json:"escalation_policy_id,omitempty"`
}

// TeamV4Input is the body of POST /teams.
type TeamV4Input struct {
	Name                 string   `json:"name"`
	Notes                string   `json:"notes,omitempty"`
	MemberAccountUserIDs []string `json:"member_account_user_ids"`
	AdminAccountUserIDs  []string `json:"admin_account_user_ids"`
}

// TeamV4Update is the body of PUT /teams/:id: only non-nil fields are sent,
// so schedule_id, escalation_policy_id and everything else ptsync does not
// own is never written.
type TeamV4Update struct {
	Name                 *string   `json:"name,omitempty"`
	Notes                *string   `json:"notes,omitempty"`
	MemberAccountUserIDs *[]string `json:"member_account_user_ids,omitempty"`
	AdminAccountUserIDs  *[]string `json:"admin_account_user_ids,omitempty"`
}

// ErrorBodyV4 is v4's error shape: {"errors":[{"message"}],"code":422}.
type ErrorBodyV4 struct {
	Errors []ErrorMessage `json:"errors"`
	Code   int            `json:"code,omitempty"`
}
