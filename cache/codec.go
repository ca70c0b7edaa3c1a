package cache

import "encoding/json"

// Codec encodes values for storage. Implementations must be safe for
// concurrent use.
type Codec interface {
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the pointer dst.
	Unmarshal(data []byte, dst any) error
}

// JSON is the default Codec (encoding/json).
type JSON struct{}

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON) Unmarshal(data []byte, dst any) error { return json.Unmarshal(data, dst) }

// Raw is a Codec for []byte values stored as they are (no encoding): Marshal
// takes []byte or string, Unmarshal fills a *[]byte or *string.
type Raw struct{}

// Marshal implements Codec.
func (Raw) Marshal(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return append([]byte{}, x...), nil
	case string:
		return []byte(x), nil
	}
	return nil, errRawType(v)
}

// Unmarshal implements Codec.
func (Raw) Unmarshal(data []byte, dst any) error {
	switch d := dst.(type) {
	case *[]byte:
		*d = append([]byte{}, data...)
		return nil
	case *string:
		*d = string(data)
		return nil
	}
	return errRawType(dst)
}
