package cache

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen is the longest key or tag accepted, in bytes.
const MaxKeyLen = 1024

// Entry is what a Tier stores: the key it belongs to, the encoded value, when
// it expires (zero: never), its tags and whether it records a "not found"
// answer (negative caching).
type Entry struct {
	Key      string
	Value    []byte
	Expires  time.Time
	Tags     []string
	Negative bool
}

// Expired reports whether the entry has expired at now.
func (e Entry) Expired(now time.Time) bool {
	return !e.Expires.IsZero() && !now.Before(e.Expires)
}

// HasTag reports whether the entry carries tag.
func (e Entry) HasTag(tag string) bool { return slices.Contains(e.Tags, tag) }

// Clone returns a deep copy of e, so a tier never shares its buffers with a
// caller.
func (e Entry) Clone() Entry {
	e.Value = slices.Clone(e.Value)
	if e.Value == nil {
		e.Value = []byte{}
	}
	e.Tags = slices.Clone(e.Tags)
	return e
}

// entryMagic starts every encoded entry (format version 1).
var entryMagic = [4]byte{'H', 'Z', 'C', 1}

// MarshalEntry encodes e in the binary form byte-oriented tiers (Redis, disk,
// S3) store: magic, flags, expiry (Unix ns, 0 = never), key, tags, value.
func MarshalEntry(e Entry) []byte {
	n := 4 + 1 + 8 + binary.MaxVarintLen64*(2+len(e.Tags)) + len(e.Key) + len(e.Value)
	for _, t := range e.Tags {
		n += len(t)
	}
	b := make([]byte, 0, n)
	b = append(b, entryMagic[:]...)
	var flags byte
	if e.Negative {
		flags |= 1
	}
	b = append(b, flags)
	var exp int64
	if !e.Expires.IsZero() {
		exp = e.Expires.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = binary.AppendUvarint(b, uint64(len(e.Tags)))
	for _, t := range e.Tags {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	return append(b, e.Value...)
}

// UnmarshalEntry decodes what MarshalEntry encoded. Malformed input is an
// error wrapping ErrCorrupt.
func UnmarshalEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) < 13 || [4]byte(b[:4]) != entryMagic {
		return e, fmt.Errorf("%w: %d bytes without the entry header", ErrCorrupt, len(b))
	}
	e.Negative = b[4]&1 != 0
	if exp := int64(binary.BigEndian.Uint64(b[5:13])); exp != 0 {
		e.Expires = time.Unix(0, exp).UTC()
	}
	b = b[13:]
	str := func(what string) (string, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", fmt.Errorf("%w: truncated %s", ErrCorrupt, what)
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, nil
	}
	var err error
	if e.Key, err = str("key"); err != nil {
		return e, err
	}
	nt, k := binary.Uvarint(b)
	if k <= 0 || nt > uint64(len(b)) {
		return e, fmt.Errorf("%w: truncated tag count of key %q", ErrCorrupt, e.Key)
	}
	b = b[k:]
	if nt > 0 {
		e.Tags = make([]string, 0, nt)
	}
	for range nt {
		t, err := str("tag")
		if err != nil {
			return e, fmt.Errorf("key %q: %w", e.Key, err)
		}
		e.Tags = append(e.Tags, t)
	}
	e.Value = append([]byte{}, b...)
	return e, nil
}

// ValidateKey checks a key or tag: 1 to MaxKeyLen bytes of UTF-8 without
// control characters. what names it in the error ("key" or "tag").
func ValidateKey(what, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidKey, what)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %s %.40q... is %d bytes long, want at most %d", ErrInvalidKey, what, key, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidKey, what, key)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q contains the control character %U", ErrInvalidKey, what, key, r)
		}
	}
	return nil
}

// JobTag is the tag of cache entries derived from job id; cache/cacheevents
// deletes it when the job changes state.
func JobTag(id string) string { return "job:" + id }
