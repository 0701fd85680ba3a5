package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree into the config structs itself, instead
// of yaml's Decode, so that every problem carries the dotted key path as
// well as the line, ${VAR} expands per scalar with lines intact, and it
// records where each key sits for Validate's messages.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	types     SourceTypes
	pos       map[string]position
	problems  Problems
	// budget bounds the nodes visited, aliases and merges included, so a
	// small file cannot expand into billions of nodes ("billion laughs").
	budget   int
	overrun  bool
	merging  map[*yaml.Node]bool // merge sources being expanded, to stop cycles
	failures map[string]bool     // keys with a decode problem; Validate's problems at or under them are noise
}

// extensionPrefix marks top-level keys ptsync ignores, as docker compose
// does: a place for YAML anchors that other keys merge or alias.
const extensionPrefix = "x-"

// maxNodeVisits is far above any real configuration (a few thousand nodes).
const maxNodeVisits = 200_000

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sourceType   = reflect.TypeOf(Source{})
)

func newDecoder(file string, lookupEnv func(string) (string, bool), types SourceTypes) *decoder {
	return &decoder{
		file:      file,
		lookupEnv: lookupEnv,
		types:     types,
		pos:       map[string]position{},
		budget:    maxNodeVisits,
		merging:   map[*yaml.Node]bool{},
		failures:  map[string]bool{},
	}
}

// problem records a decode problem at node n.
func (d *decoder) problem(n *yaml.Node, key, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: n.Line, Column: n.Column, Key: key, Message: fmt.Sprintf(format, args...)})
	d.failures[key] = true
}

// failed reports whether key or one of its ancestors had a decode problem.
func (d *decoder) failed(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if d.failures[k] {
			return true
		}
	}
	return false
}

// spend takes one node visit from the budget and reports whether any was left.
func (d *decoder) spend(n *yaml.Node) bool {
	if d.budget > 0 {
		d.budget--
		return true
	}
	if !d.overrun {
		d.overrun = true
		d.problem(n, "", "the document is too large once its aliases are expanded (over %d nodes)", maxNodeVisits)
	}
	return false
}

// document decodes a parsed file into cfg, which holds the defaults. It
// reports false when what it decoded is too partial to validate: a file
// that is not a mapping, or one whose aliases blew the budget.
func (d *decoder) document(root *yaml.Node, cfg *Config) bool {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return true
		}
		n = n.Content[0]
	}
	if n.Kind == 0 || isNull(n) {
		return true // an empty file: Validate reports what is missing
	}
	if n = resolveAlias(n); n.Kind != yaml.MappingNode {
		d.problem(n, "", "the file must be a mapping of keys (schedule:, pagertree:, sources:, ...), got %s", describe(n))
		return false
	}
	d.value(n, reflect.ValueOf(cfg).Elem(), "")
	return !d.overrun
}

// value decodes node n into v; key is v's dotted path, "" for the root.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	n = resolveAlias(n)
	if !d.spend(n) || isNull(n) {
		return // null leaves the default, like an absent key
	}
	switch v.Type() {
	case durationType:
		d.duration(n, v, key)
		return
	case sourceType:
		d.source(n, v.Addr().Interface().(*Source), key)
		return
	}
	switch v.Kind() {
	case reflect.String:
		if s, ok := d.scalar(n, key, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		d.bool(n, v, key)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.int(n, v, key)
	case reflect.Float32, reflect.Float64:
		d.float(n, v, key)
	case reflect.Slice:
		d.slice(n, v, key)
	case reflect.Pointer:
		if n.Kind != yaml.MappingNode {
			d.problem(n, key, "must be a mapping, got %s", describe(n))
			return
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(initial(v.Type().Elem()))
		d.mapping(n, p.Elem(), key)
		v.Set(p)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.problem(n, key, "must be a mapping, got %s", describe(n))
			return
		}
		d.mapping(n, v, key)
	default: // a field type types.go gained without a case here
		d.problem(n, key, "internal error: no decoder for %s", v.Type())
	}
}

// scalar returns n's value with ${VAR} expanded, or reports why it cannot.
func (d *decoder) scalar(n *yaml.Node, key, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(n, key, "must be %s, got %s", want, describe(n))
		return "", false
	}
	s, err := expandEnv(n.Value, d.lookupEnv)
	if err != nil {
		d.problem(n, key, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, key string) {
	s, ok := d.scalar(n, key, "a duration such as 30s or 15m")
	if !ok {
		return
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.problem(n, key, "must be a duration such as 30s or 15m, got %s", durationShape(s))
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) bool(n *yaml.Node, v reflect.Value, key string) {
	s, ok := d.scalar(n, key, "true or false")
	if !ok {
		return
	}
	// YAML 1.1's yes/no/on/off are accepted, as yaml.v3 does for bool fields.
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on":
		v.SetBool(true)
	case "false", "no", "off":
		v.SetBool(false)
	default:
		d.problem(n, key, "must be true or false, got %s", shape(s))
	}
}

func (d *decoder) int(n *yaml.Node, v reflect.Value, key string) {
	s, ok := d.scalar(n, key, "an integer")
	if !ok {
		return
	}
	i, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
	if err != nil {
		d.problem(n, key, "must be an integer, got %s", integerShape(s, err))
		return
	}
	v.SetInt(i)
}

func (d *decoder) float(n *yaml.Node, v reflect.Value, key string) {
	s, ok := d.scalar(n, key, "a number")
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
	switch {
	case err != nil:
		d.problem(n, key, "must be a number, got %s", shape(s))
		return
	case math.IsNaN(f) || math.IsInf(f, 0):
		d.problem(n, key, "must be a finite number")
		return
	}
	v.SetFloat(f)
}

// A value that does not fit a number, true/false or duration field is
// described, never repeated: a password pasted one line off would
// otherwise land in the error, and from there in logs and CI output. Only
// string fields with a fixed set of values echo what they got.

// shape says what kind of value s is without repeating it.
func shape(s string) string {
	if strings.TrimSpace(s) == "" {
		return "an empty value"
	}
	if n := utf8.RuneCountInString(s); n != 1 {
		return fmt.Sprintf("a string of %d characters", n)
	}
	return "a string of 1 character"
}

// integerShape is shape for an integer field, err being ParseInt's.
func integerShape(s string, err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "a number out of range"
	}
	if isFiniteNumber(s) {
		return "a decimal number"
	}
	return shape(s)
}

// durationShape is shape for a duration field: a bare number is the usual
// slip, and saying so is safe.
func durationShape(s string) string {
	if isFiniteNumber(s) {
		return "a number without a unit"
	}
	return shape(s)
}

func isFiniteNumber(s string) bool {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// slice decodes a sequence, replacing (never appending to) a default list.
func (d *decoder) slice(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.problem(n, key, "must be a list, got %s", describe(n))
		return
	}
	list := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		itemKey := key + "[" + strconv.Itoa(i) + "]"
		d.pos[itemKey] = position{item.Line, item.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		elem.Set(initial(v.Type().Elem()))
		d.value(item, elem, itemKey)
		list = reflect.Append(list, elem)
	}
	v.Set(list)
}

// mapping decodes a mapping into struct v, field by field through their
// yaml tags, rejecting unknown and duplicate keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	fields := yamlFields(v.Type())
	for _, kv := range d.pairs(n, key) {
		name := kv.key.Value
		fieldKey := joinKey(key, name)
		i, ok := fields[name]
		if !ok && key == "" && strings.HasPrefix(name, extensionPrefix) {
			continue
		}
		if !ok {
			d.unknownKey(kv.key, key, fields)
			continue
		}
		d.pos[fieldKey] = position{kv.key.Line, kv.key.Column}
		d.value(kv.value, v.Field(i), fieldKey)
	}
}

// source decodes one sources[] entry: its name, its type, and the block
// named by the type, decoded over that type's defaults. A block of another
// known type is reported; its keys are not checked.
func (d *decoder) source(n *yaml.Node, src *Source, key string) {
	if n.Kind != yaml.MappingNode {
		d.problem(n, key, "must be a mapping, got %s", describe(n))
		return
	}
	known := map[string]int{"name": 0, "type": 1}
	for typ := range d.types {
		known[typ] = len(known)
	}
	var blocks []pair
	for _, kv := range d.pairs(n, key) {
		name := kv.key.Value
		fieldKey := joinKey(key, name)
		d.pos[fieldKey] = position{kv.key.Line, kv.key.Column}
		switch _, isType := d.types[name]; {
		case name == "name":
			d.value(kv.value, reflect.ValueOf(&src.Name).Elem(), fieldKey)
		case name == "type":
			d.value(kv.value, reflect.ValueOf(&src.Type).Elem(), fieldKey)
		case isType:
			blocks = append(blocks, kv) // once the type is known, whatever the key order
		default:
			d.unknownKey(kv.key, key, known)
		}
	}
	for _, kv := range blocks {
		name := kv.key.Value
		fieldKey := joinKey(key, name)
		_, typeKnown := d.types[src.Type]
		switch {
		case name != src.Type && typeKnown:
			d.problem(kv.key, fieldKey, "does not belong in a source of type %s (set type: %s, or move it to a source of its own)", src.Type, name)
		case name != src.Type, isNull(resolveAlias(kv.value)):
			// A type that is wrong is reported by Validate; a null block
			// is as good as absent ("is required for type ...").
		default:
			settings := d.types[name]()
			d.value(kv.value, reflect.ValueOf(settings).Elem(), fieldKey)
			src.Settings = settings
		}
	}
}

// unknownKey reports a key no field of its mapping has, with the known key
// it most likely misspells.
func (d *decoder) unknownKey(k *yaml.Node, parent string, known map[string]int) {
	fieldKey := joinKey(parent, k.Value)
	suggestion := closestKey(k.Value, known)
	if suggestion == "" {
		d.problem(k, fieldKey, "unknown key")
		return
	}
	d.problem(k, fieldKey, "unknown key (did you mean %s?)", suggestion)
	// The misspelt key's value never reached the one meant; do not also
	// call that one missing.
	d.failures[joinKey(parent, suggestion)] = true
}

type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's entries in the order they apply: keys merged in
// with "<<" first, so the mapping's own keys override them.
func (d *decoder) pairs(n *yaml.Node, key string) []pair {
	var merged, own []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.spend(k) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, key)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(k, key, "keys must be plain names, got %s", describe(resolveAlias(k)))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(k, joinKey(key, k.Value), "duplicate key (first set on line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, val})
	}
	return append(merged, own...)
}

// merge returns the entries a "<<" key brings in: one mapping, or a list of
// them where earlier ones win.
func (d *decoder) merge(val *yaml.Node, key string) []pair {
	val = resolveAlias(val)
	sources := []*yaml.Node{val}
	if val.Kind == yaml.SequenceNode {
		sources = sources[:0]
		for i := len(val.Content) - 1; i >= 0; i-- {
			sources = append(sources, resolveAlias(val.Content[i]))
		}
	}
	var out []pair
	for _, m := range sources {
		if m.Kind != yaml.MappingNode {
			d.problem(val, joinKey(key, "<<"), "must merge a mapping or a list of mappings, got %s", describe(m))
			continue
		}
		if d.merging[m] {
			d.problem(val, joinKey(key, "<<"), "merges a mapping into itself")
			continue
		}
		d.merging[m] = true
		out = append(out, d.pairs(m, key)...)
		delete(d.merging, m)
	}
	return out
}

// initial is the value a new list item or block starts from before its
// keys are decoded over it: its defaults.
func initial(t reflect.Type) reflect.Value {
	if t == reflect.TypeOf(TeamRule{}) {
		return reflect.ValueOf(defaultTeamRule())
	}
	return reflect.Zero(t)
}

// yamlFields maps a struct's yaml key names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	return fields
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

// closestKey returns the known key name looks like a typo of, or "".
func closestKey(name string, fields map[string]int) string {
	best, bestDist := "", len(name)/4+2 // up to 1 edit in 4 letters, and 1 more
	for known := range fields {
		dist := editDistance(strings.ToLower(name), known)
		if dist < bestDist || (dist == bestDist && known < best) {
			best, bestDist = known, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
