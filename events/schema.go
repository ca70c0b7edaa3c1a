package events

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Schema is a JSON Schema document restricted to the keywords the event
// payloads use: type, required, properties, additionalProperties (boolean),
// enum, minimum, maximum, minLength and items. Unknown keywords are ignored, as
// the JSON Schema specification allows.
type Schema struct {
	Type                 any                `json:"type,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	AdditionalProperties *bool              `json:"additionalProperties,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Maximum              *float64           `json:"maximum,omitempty"`
	MinLength            *int               `json:"minLength,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
}

// ParseSchema decodes a JSON Schema document.
func ParseSchema(doc []byte) (*Schema, error) {
	var s Schema
	if err := json.Unmarshal(doc, &s); err != nil {
		return nil, fmt.Errorf("events: parse schema: %w", err)
	}
	return &s, nil
}

// Validate checks v, a value produced by encoding/json decoding into any,
// against the schema. The error names the first offending field path.
func (s *Schema) Validate(v any) error { return s.validate("data", v) }

func (s *Schema) types() []string {
	switch t := s.Type.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			if str, ok := x.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "number"
		}
		return "integer"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func (s *Schema) validate(path string, v any) error {
	if s == nil {
		return nil
	}
	got := jsonType(v)
	if ts := s.types(); len(ts) > 0 {
		ok := false
		for _, t := range ts {
			if t == got || (t == "number" && got == "integer") {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("field %s is %s %s, want %s", path, got, short(v), strings.Join(ts, " or "))
		}
	}
	if len(s.Enum) > 0 {
		ok := false
		for _, e := range s.Enum {
			if enumEqual(e, v) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("field %s is %s, not one of %v", path, short(v), s.Enum)
		}
	}
	switch x := v.(type) {
	case float64:
		if s.Minimum != nil && x < *s.Minimum {
			return fmt.Errorf("field %s is %v, below the minimum %v", path, x, *s.Minimum)
		}
		if s.Maximum != nil && x > *s.Maximum {
			return fmt.Errorf("field %s is %v, above the maximum %v", path, x, *s.Maximum)
		}
	case string:
		if s.MinLength != nil && len([]rune(x)) < *s.MinLength {
			return fmt.Errorf("field %s is %q, shorter than %d characters", path, x, *s.MinLength)
		}
	case []any:
		for i, item := range x {
			if err := s.Items.validate(fmt.Sprintf("%s[%d]", path, i), item); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("field %s.%s is required and missing", path, r)
			}
		}
		// Check in map order, which is cheap; only when something fails,
		// go again in key order so the error names the first offending
		// field deterministically.
		for k, val := range x {
			if s.propertyError(path, k, val) != nil {
				keys := make([]string, 0, len(x))
				for k := range x {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					if err := s.propertyError(path, k, x[k]); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// propertyError validates the property k of an object at path.
func (s *Schema) propertyError(path, k string, v any) error {
	ps, ok := s.Properties[k]
	if !ok {
		if s.AdditionalProperties != nil && !*s.AdditionalProperties {
			return fmt.Errorf("field %s.%s is not allowed", path, k)
		}
		return nil
	}
	switch v.(type) {
	case map[string]any, []any:
		return ps.validate(path+"."+k, v)
	}
	// A scalar: check it without building its path, and only on failure
	// again with the path for the message.
	if ps.validate("", v) == nil {
		return nil
	}
	return ps.validate(path+"."+k, v)
}

// enumEqual reports whether the decoded JSON values a and b are equal, for
// the scalar types an enum holds.
func enumEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return fmt.Sprint(a) == fmt.Sprint(b) && jsonType(a) == jsonType(b)
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
