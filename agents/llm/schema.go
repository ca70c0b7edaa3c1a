package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// ErrSchema reports a JSON document that violates a schema.
var ErrSchema = errors.New("llm: schema violation")

// Schema is the subset of JSON Schema that structured LLM answers need:
// type, properties, required, additionalProperties (false), enum, minimum,
// maximum, minLength, maxLength, items, minItems and maxItems. The same
// document is sent to Ollama as the "format" and used to check its answer.
type Schema struct {
	Type                 string             `json:"type,omitempty"`
	Description          string             `json:"description,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *bool              `json:"additionalProperties,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Maximum              *float64           `json:"maximum,omitempty"`
	MinLength            *int               `json:"minLength,omitempty"`
	MaxLength            *int               `json:"maxLength,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	MinItems             *int               `json:"minItems,omitempty"`
	MaxItems             *int               `json:"maxItems,omitempty"`
}

// Raw returns the schema as JSON, ready for a request's Format.
func (s *Schema) Raw() json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a Schema always encodes
	}
	return b
}

// ValidateJSON decodes doc and validates it against s. Errors wrap
// ErrSchema (or ErrMalformed for text that is not JSON) and name the path
// and the offending value, e.g. `$.score = 7: must be <= 1`.
func (s *Schema) ValidateJSON(doc []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", ErrMalformed)
	}
	if err := s.Validate(v); err != nil {
		return nil, err
	}
	return v, nil
}

// Validate checks a decoded JSON value (numbers as json.Number or float64).
func (s *Schema) Validate(v any) error { return s.validate("$", v) }

func (s *Schema) fail(path string, v any, format string, args ...any) error {
	b, _ := json.Marshal(v)
	vs := string(b)
	if len(vs) > 60 {
		vs = vs[:57] + "..."
	}
	return fmt.Errorf("%w: %s = %s: %s", ErrSchema, path, vs, fmt.Sprintf(format, args...))
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

func (s *Schema) validate(path string, v any) error {
	if s == nil {
		return nil
	}
	switch s.Type {
	case "":
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return s.fail(path, v, "must be an object")
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				return fmt.Errorf("%w: %s.%s is missing: required", ErrSchema, path, r)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := s.Properties[k]
			if !ok {
				if s.AdditionalProperties != nil && !*s.AdditionalProperties {
					return s.fail(path+"."+k, m[k], "is not an allowed property")
				}
				continue
			}
			if err := ps.validate(path+"."+k, m[k]); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return s.fail(path, v, "must be an array")
		}
		if s.MinItems != nil && len(a) < *s.MinItems {
			return s.fail(path, v, "must have at least %d items", *s.MinItems)
		}
		if s.MaxItems != nil && len(a) > *s.MaxItems {
			return s.fail(path, v, "must have at most %d items", *s.MaxItems)
		}
		for i, x := range a {
			if err := s.Items.validate(fmt.Sprintf("%s[%d]", path, i), x); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return s.fail(path, v, "must be a string")
		}
		n := len([]rune(str))
		if s.MinLength != nil && n < *s.MinLength {
			return s.fail(path, v, "must be at least %d characters", *s.MinLength)
		}
		if s.MaxLength != nil && n > *s.MaxLength {
			return s.fail(path, v, "must be at most %d characters", *s.MaxLength)
		}
	case "number", "integer":
		f, ok := number(v)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return s.fail(path, v, "must be a finite %s", s.Type)
		}
		if s.Type == "integer" && f != math.Trunc(f) {
			return s.fail(path, v, "must be an integer")
		}
		if s.Minimum != nil && f < *s.Minimum {
			return s.fail(path, v, "must be >= %v", *s.Minimum)
		}
		if s.Maximum != nil && f > *s.Maximum {
			return s.fail(path, v, "must be <= %v", *s.Maximum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return s.fail(path, v, "must be true or false")
		}
	case "null":
		if v != nil {
			return s.fail(path, v, "must be null")
		}
	default:
		return fmt.Errorf("%w: %s: schema has unsupported type %q", ErrSchema, path, s.Type)
	}
	if len(s.Enum) > 0 {
		for _, e := range s.Enum {
			if equalJSON(e, v) {
				return nil
			}
		}
		return s.fail(path, v, "must be one of %s", enumList(s.Enum))
	}
	return nil
}

func equalJSON(a, b any) bool {
	fa, oka := number(a)
	fb, okb := number(b)
	if oka && okb {
		return fa == fb
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func enumList(e []any) string {
	parts := make([]string, len(e))
	for i, x := range e {
		b, _ := json.Marshal(x)
		parts[i] = string(b)
	}
	return strings.Join(parts, ", ")
}
