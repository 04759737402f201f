package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"

	gen "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// For returns the JSON Schema of the JSON form of values of type t (a
// struct, or a pointer to one, with JSON tags): a field is required unless
// it is omitempty, unknown fields are refused, and jsonschema tags add
// bounds (`jsonschema:"minimum=0,maximum=3600"`), enums and patterns. A
// type that is not a struct (a map, say) has no schema: For returns nil.
func For(t reflect.Type) ([]byte, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, nil
	}
	if field := unencodable(t, "", map[reflect.Type]bool{}); field != "" {
		return nil, fmt.Errorf("schema: of %s: field %s cannot travel as JSON", t, field)
	}
	r := &gen.Reflector{DoNotReference: true, ExpandedStruct: true, Anonymous: true}
	s, err := reflect0(r, t)
	if err != nil {
		return nil, fmt.Errorf("schema: of %s: %v", t, err)
	}
	s.Version = "https://json-schema.org/draft/2020-12/schema"
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("schema: of %s: %w", t, err)
	}
	return raw, nil
}

// reflect0 runs the generator, which panics on what it cannot describe.
func reflect0(r *gen.Reflector, t reflect.Type) (s *gen.Schema, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	return r.ReflectFromType(t), nil
}

// unencodable names the first exported field of t (a struct) of a kind
// JSON cannot carry (a channel, a function, a complex number), or "".
func unencodable(t reflect.Type, path string, seen map[reflect.Type]bool) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return path
	case reflect.Struct:
	default:
		return ""
	}
	if seen[t] {
		return ""
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("json") == "-" {
			continue
		}
		name := f.Name
		if path != "" {
			name = path + "." + f.Name
		}
		if bad := unencodable(f.Type, name, seen); bad != "" {
			return bad
		}
	}
	return ""
}

// Schema is a compiled schema.
type Schema struct {
	s    *jsonschema.Schema
	doc  any    // the schema, decoded, to explain errors
	noun string // "parameter" or "setting"
}

// Compile compiles a JSON Schema; noun is what its properties are called
// in messages ("parameter", "setting").
func Compile(raw []byte, noun string) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema: not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("berth:schema.json", doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	s, err := c.Compile("berth:schema.json")
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return &Schema{s: s, doc: doc, noun: noun}, nil
}

// Check checks a JSON value (empty is {}) against the schema; the error
// says, for each problem, which property is wrong and what it must be.
func (s *Schema) Check(value []byte) error {
	if len(bytes.TrimSpace(value)) == 0 {
		value = []byte("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("the %ss are not JSON: %v", s.noun, err)
	}
	err = s.s.Validate(inst)
	var verr *jsonschema.ValidationError
	if err == nil || !errors.As(err, &verr) {
		return err
	}
	var msgs []string
	seen := map[string]bool{}
	for _, leaf := range leaves(verr) {
		for _, m := range s.explain(leaf, inst) {
			if !seen[m] {
				seen[m] = true
				msgs = append(msgs, m)
			}
		}
	}
	sort.Strings(msgs)
	return errors.New(strings.Join(msgs, "; "))
}

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// explain words one problem.
func (s *Schema) explain(e *jsonschema.ValidationError, inst any) []string {
	at := e.InstanceLocation
	name := func(extra ...string) string {
		p := append(append([]string{}, at...), extra...)
		if len(p) == 0 {
			return "the " + s.noun + "s"
		}
		return fmt.Sprintf("%s %q", s.noun, strings.Join(p, "."))
	}
	got := describe(lookup(inst, at))
	prop := s.property(at)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []string
		for _, m := range k.Missing {
			msg := name(m) + " is required"
			if d, _ := s.node(append(append([]string{}, at...), m))["description"].(string); d != "" {
				msg += ": " + d
			}
			out = append(out, msg)
		}
		return out
	case *kind.AdditionalProperties:
		var out []string
		for _, p := range k.Properties {
			out = append(out, fmt.Sprintf("unknown %s", name(p))+s.known(at))
		}
		return out
	case *kind.Type:
		return []string{fmt.Sprintf("%s must be %s, got %s", name(), typePhrase(k.Want), got)}
	case *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum:
		return []string{fmt.Sprintf("%s must be %s, got %s", name(), rangePhrase(prop), got)}
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, describe(w))
		}
		return []string{fmt.Sprintf("%s must be one of %s, got %s", name(), strings.Join(want, ", "), got)}
	case *kind.Const:
		return []string{fmt.Sprintf("%s must be %s, got %s", name(), describe(k.Want), got)}
	case *kind.Pattern:
		return []string{fmt.Sprintf("%s must match %s, got %s", name(), k.Want, got)}
	case *kind.MinLength:
		return []string{fmt.Sprintf("%s must be at least %d characters long, got %s", name(), k.Want, got)}
	case *kind.MaxLength:
		return []string{fmt.Sprintf("%s must be at most %d characters long", name(), k.Want)}
	case *kind.MinItems:
		return []string{fmt.Sprintf("%s must hold at least %d items, got %d", name(), k.Want, k.Got)}
	case *kind.MaxItems:
		return []string{fmt.Sprintf("%s must hold at most %d items, got %d", name(), k.Want, k.Got)}
	case *kind.FalseSchema:
		return []string{name() + " is not allowed"}
	case *kind.Format:
		return []string{fmt.Sprintf("%s must be a %s, got %s", name(), k.Want, got)}
	}
	return []string{fmt.Sprintf("%s: %s", name(), e.ErrorKind.LocalizedString(nil))}
}

// known lists the properties the object at path takes.
func (s *Schema) known(at []string) string {
	props, _ := s.node(at)["properties"].(map[string]any)
	if len(props) == 0 {
		return ""
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	return " (known: " + strings.Join(names, ", ") + ")"
}

// node is the schema object describing the value at path (nil if unknown).
func (s *Schema) node(at []string) map[string]any {
	n, _ := s.doc.(map[string]any)
	for _, p := range at {
		if n == nil {
			return nil
		}
		if props, ok := n["properties"].(map[string]any); ok {
			if next, ok := props[p].(map[string]any); ok {
				n = next
				continue
			}
		}
		if items, ok := n["items"].(map[string]any); ok {
			n = items
			continue
		}
		return nil
	}
	return n
}

// property is the schema of the value at path.
func (s *Schema) property(at []string) map[string]any { return s.node(at) }

func typePhrase(want []string) string {
	var out []string
	for _, w := range want {
		switch w {
		case "string":
			out = append(out, "a string")
		case "number":
			out = append(out, "a number")
		case "integer":
			out = append(out, "a whole number")
		case "boolean":
			out = append(out, "true or false")
		case "object":
			out = append(out, "an object")
		case "array":
			out = append(out, "a list")
		default:
			out = append(out, w)
		}
	}
	return strings.Join(out, " or ")
}

// rangePhrase says the bounds of a number property.
func rangePhrase(p map[string]any) string {
	what := "a number"
	if t, _ := p["type"].(string); t == "integer" {
		what = "a whole number"
	}
	lo, hasLo := bound(p, "minimum")
	hi, hasHi := bound(p, "maximum")
	xlo, hasXlo := bound(p, "exclusiveMinimum")
	xhi, hasXhi := bound(p, "exclusiveMaximum")
	switch {
	case hasLo && hasHi:
		return fmt.Sprintf("%s from %s to %s", what, lo, hi)
	case hasLo && !hasXhi:
		return fmt.Sprintf("%s of at least %s", what, lo)
	case hasHi && !hasXlo:
		return fmt.Sprintf("%s of at most %s", what, hi)
	}
	var parts []string
	if hasLo {
		parts = append(parts, "at least "+lo)
	}
	if hasXlo {
		parts = append(parts, "above "+xlo)
	}
	if hasHi {
		parts = append(parts, "at most "+hi)
	}
	if hasXhi {
		parts = append(parts, "below "+xhi)
	}
	return what + " " + strings.Join(parts, " and ")
}

func bound(p map[string]any, key string) (string, bool) {
	v, ok := p[key]
	if !ok {
		return "", false
	}
	return describe(v), true
}

// lookup is the value at path in a decoded JSON value.
func lookup(v any, at []string) any {
	for _, p := range at {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// describe shows a JSON value in a message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", x)
	case json.Number:
		return x.String()
	case *big.Rat:
		return x.RatString()
	case float64, bool, int, int64:
		return fmt.Sprint(x)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}
