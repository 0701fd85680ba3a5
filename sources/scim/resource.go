package scim

import (
	"encoding/json"
	"strings"

	"github.com/ptsync/ptsync/sources"
)

// userAttributes are the user attributes read (RFC 7643 §4.1): asking for
// them keeps pages free of groups, roles, certificates and extensions.
const userAttributes = "active,displayName,name,emails,phoneNumbers"

// groupAttributes are the group attributes read (RFC 7643 §4.2).
const groupAttributes = "displayName,members"

// flexBool is a SCIM boolean. Some providers send "True" or "false" as
// strings; those are read as the booleans they mean.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v bool
	if err := json.Unmarshal(data, &v); err == nil {
		*b = flexBool(v)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*b = flexBool(strings.EqualFold(strings.TrimSpace(s), "true"))
	return nil
}

// multi is one item of a multi-valued attribute (emails, phoneNumbers).
type multi struct {
	Value   string   `json:"value"`
	Type    string   `json:"type"`
	Primary flexBool `json:"primary"`
}

type scimUser struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Name        struct {
		Formatted  string `json:"formatted"`
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Active       *flexBool `json:"active"`
	Emails       []multi   `json:"emails"`
	PhoneNumbers []multi   `json:"phoneNumbers"`
}

func (u *scimUser) id() string { return u.ID }

type member struct {
	Value string `json:"value"`
	Type  string `json:"type"`
	Ref   string `json:"$ref"`
}

type scimGroup struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName"`
	Members     []member `json:"members"`
}

// rawGroup is a group with its JSON kept, for group_filter applied here.
type rawGroup struct {
	scimGroup
	raw json.RawMessage
}

func (g *rawGroup) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &g.scimGroup); err != nil {
		return err
	}
	g.raw = append(json.RawMessage(nil), data...)
	return nil
}

func (g *scimGroup) id() string { return g.ID }

// user maps a SCIM user: an account without active is enabled.
func (u *scimUser) user() sources.User {
	name := strings.TrimSpace(u.DisplayName)
	if name == "" {
		name = strings.TrimSpace(u.Name.Formatted)
	}
	if name == "" {
		name = strings.TrimSpace(strings.TrimSpace(u.Name.GivenName) + " " + strings.TrimSpace(u.Name.FamilyName))
	}
	return sources.User{
		ID:       u.ID,
		Email:    pickValue(u.Emails, "work"),
		Name:     name,
		Phone:    pickValue(u.PhoneNumbers, "work", "mobile"),
		Disabled: u.Active != nil && !bool(*u.Active),
	}
}

// pickValue returns the value of the primary item, else of the first item
// of each type in turn; emails (one type given) fall back to the first
// item of any type, phones do not (a fax or home line is no way to page
// someone). Items without a value are passed over.
func pickValue(items []multi, types ...string) string {
	var values []multi
	for _, it := range items {
		if it.Value = strings.TrimSpace(it.Value); it.Value != "" {
			values = append(values, it)
		}
	}
	for _, it := range values {
		if it.Primary {
			return it.Value
		}
	}
	for _, t := range types {
		for _, it := range values {
			if strings.EqualFold(it.Type, t) {
				return it.Value
			}
		}
	}
	if len(types) == 1 && len(values) > 0 {
		return values[0].Value
	}
	return ""
}

// Member kinds.
const (
	kindUser    = "user"
	kindGroup   = "group"
	kindUnknown = "" // no type and no $ref: resolved by id
)

// kind says what a member is by its type, else its $ref; any other type
// is returned lower-cased.
func (m member) kind() string {
	if t := strings.ToLower(strings.TrimSpace(m.Type)); t != "" {
		return t
	}
	switch {
	case strings.Contains(m.Ref, "/Groups/"):
		return kindGroup
	case strings.Contains(m.Ref, "/Users/"):
		return kindUser
	}
	return kindUnknown
}
