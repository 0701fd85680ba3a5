package graphtest

import (
	"fmt"
	"slices"
	"strings"
)

// OData type names of the directory objects the fake serves.
const (
	typeUser             = "#microsoft.graph.user"
	typeGroup            = "#microsoft.graph.group"
	typeDevice           = "#microsoft.graph.device"
	typeOrgContact       = "#microsoft.graph.orgContact"
	typeServicePrincipal = "#microsoft.graph.servicePrincipal"
)

// entitySets maps each type a collection can be cast to onto the entity set
// its @odata.context names.
var entitySets = map[string]string{
	typeUser:             "users",
	typeGroup:            "groups",
	typeDevice:           "devices",
	typeOrgContact:       "contacts",
	typeServicePrincipal: "servicePrincipals",
}

// Property names, as Graph spells them. The user default set is what
// GET /users returns without $select; accountEnabled is not in it. Properties
// the fake does not model are rendered null, as Graph renders unset ones.
var (
	userProps    = []string{"id", "displayName", "mail", "userPrincipalName", "mobilePhone", "businessPhones", "accountEnabled", "givenName", "surname", "jobTitle", "officeLocation", "preferredLanguage"}
	userDefaults = []string{"businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName"}
	groupProps   = []string{"id", "displayName", "description", "mail"}
	objectProps  = []string{"id", "displayName"}
	// directoryObjectProps is what $select may name on a directoryObject
	// collection (members, owners): any property of a type it can hold.
	directoryObjectProps = unionProps(userProps, groupProps, objectProps)
)

func unionProps(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, p := range l {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// entity is one directory object as Graph renders it.
type entity interface {
	id() string
	odataType() string
	// props is the type's selectable properties; defaults those sent without $select.
	props() []string
	defaults() []string
	// prop returns a property's JSON value; ok is false when the type has no
	// such property.
	prop(name string) (value any, ok bool)
}

// nullable renders "" as JSON null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type userEntity struct{ u User }

func (e userEntity) id() string         { return e.u.ID }
func (e userEntity) odataType() string  { return typeUser }
func (e userEntity) props() []string    { return userProps }
func (e userEntity) defaults() []string { return userDefaults }

func (e userEntity) prop(name string) (any, bool) {
	switch name {
	case "id":
		return e.u.ID, true
	case "displayName":
		return nullable(e.u.DisplayName), true
	case "mail":
		return nullable(e.u.Mail), true
	case "userPrincipalName":
		return nullable(e.u.UserPrincipalName), true
	case "mobilePhone":
		return nullable(e.u.MobilePhone), true
	case "businessPhones":
		// A collection is never null in Graph: empty is [].
		return append([]string{}, e.u.BusinessPhones...), true
	case "accountEnabled":
		return e.u.AccountEnabled, true
	case "givenName", "surname", "jobTitle", "officeLocation", "preferredLanguage":
		return nil, true
	}
	return nil, false
}

type groupEntity struct{ g Group }

func (e groupEntity) id() string         { return e.g.ID }
func (e groupEntity) odataType() string  { return typeGroup }
func (e groupEntity) props() []string    { return groupProps }
func (e groupEntity) defaults() []string { return groupProps }

func (e groupEntity) prop(name string) (any, bool) {
	switch name {
	case "id":
		return e.g.ID, true
	case "displayName":
		return nullable(e.g.DisplayName), true
	case "description":
		return nullable(e.g.Description), true
	case "mail":
		return nullable(e.g.Mail), true
	}
	return nil, false
}

type objectEntity struct{ o Object }

func (e objectEntity) id() string         { return e.o.ID }
func (e objectEntity) odataType() string  { return e.o.ODataType }
func (e objectEntity) props() []string    { return objectProps }
func (e objectEntity) defaults() []string { return objectProps }

func (e objectEntity) prop(name string) (any, bool) {
	switch name {
	case "id":
		return e.o.ID, true
	case "displayName":
		return nullable(e.o.DisplayName), true
	}
	return nil, false
}

// render builds an entity's JSON object: the given properties (its defaults
// when sel is nil) that its type has, preceded by @odata.type when withType.
func render(e entity, sel []string, withType bool) map[string]any {
	if sel == nil {
		sel = e.defaults()
	}
	m := make(map[string]any, len(sel)+1)
	if withType {
		m["@odata.type"] = e.odataType()
	}
	for _, name := range sel {
		if v, ok := e.prop(name); ok {
			m[name] = v
		}
	}
	return m
}

// directory is an immutable index of a Tenant; SetTenant swaps in a new one.
type directory struct {
	tenantID string
	users    []entity
	groups   []entity
	objects  []entity
	byID     map[string]entity
	byUPN    map[string]entity // lower-cased userPrincipalName
}

// mustIndex copies t (so later changes by the caller do not race with
// requests) and indexes it, panicking on an inconsistent tenant.
func mustIndex(t Tenant) *directory {
	d := &directory{tenantID: t.ID, byID: make(map[string]entity), byUPN: make(map[string]entity)}
	add := func(e entity) {
		if e.id() == "" {
			panic("graphtest: a directory object has an empty id")
		}
		if _, dup := d.byID[e.id()]; dup {
			panic(fmt.Sprintf("graphtest: duplicate directory object id %q", e.id()))
		}
		d.byID[e.id()] = e
	}
	for _, u := range t.Users {
		u.BusinessPhones = slices.Clone(u.BusinessPhones)
		e := userEntity{u}
		add(e)
		d.users = append(d.users, e)
		if u.UserPrincipalName != "" {
			d.byUPN[strings.ToLower(u.UserPrincipalName)] = e
		}
	}
	for _, g := range t.Groups {
		g.Members = slices.Clone(g.Members)
		g.Owners = slices.Clone(g.Owners)
		e := groupEntity{g}
		add(e)
		d.groups = append(d.groups, e)
	}
	for _, o := range t.Objects {
		if _, ok := entitySets[o.ODataType]; !ok || o.ODataType == typeUser || o.ODataType == typeGroup {
			panic(fmt.Sprintf("graphtest: object %q has type %q; want one of %s, %s, %s", o.ID, o.ODataType, typeDevice, typeOrgContact, typeServicePrincipal))
		}
		e := objectEntity{o}
		add(e)
		d.objects = append(d.objects, e)
	}
	for _, e := range d.groups {
		g := e.(groupEntity).g
		for _, id := range g.Members {
			if _, ok := d.byID[id]; !ok {
				panic(fmt.Sprintf("graphtest: group %q has unknown member %q", g.ID, id))
			}
		}
		for _, id := range g.Owners {
			if o, ok := d.byID[id]; !ok || o.odataType() == typeGroup {
				panic(fmt.Sprintf("graphtest: group %q has owner %q, which is no user or object", g.ID, id))
			}
		}
	}
	return d
}

// tenant is the Tenant d indexes, sharing no slice with d, for Update to
// edit.
func (d *directory) tenant() Tenant {
	t := Tenant{ID: d.tenantID}
	for _, e := range d.users {
		u := e.(userEntity).u
		u.BusinessPhones = slices.Clone(u.BusinessPhones)
		t.Users = append(t.Users, u)
	}
	for _, e := range d.groups {
		g := e.(groupEntity).g
		g.Members, g.Owners = slices.Clone(g.Members), slices.Clone(g.Owners)
		t.Groups = append(t.Groups, g)
	}
	for _, e := range d.objects {
		t.Objects = append(t.Objects, e.(objectEntity).o)
	}
	return t
}

func (d *directory) group(id string) (Group, bool) {
	e, ok := d.byID[id].(groupEntity)
	return e.g, ok
}

func (d *directory) lookup(ids []string) []entity {
	out := make([]entity, len(ids))
	for i, id := range ids {
		out[i] = d.byID[id]
	}
	return out
}

// transitiveMembers flattens root's membership depth-first. Nested groups are
// items themselves, as in Graph; every object appears once however many paths
// lead to it, cycles end where they meet a group already seen, and root itself
// is never its own member.
func (d *directory) transitiveMembers(root Group) []entity {
	seen := map[string]bool{root.ID: true}
	var out []entity
	var walk func(g Group)
	walk = func(g Group) {
		for _, id := range g.Members {
			if seen[id] {
				continue
			}
			seen[id] = true
			e := d.byID[id]
			out = append(out, e)
			if ge, ok := e.(groupEntity); ok {
				walk(ge.g)
			}
		}
	}
	walk(root)
	return out
}
