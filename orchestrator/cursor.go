package orchestrator

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// EncodeCursor returns the opaque cursor that continues a newest-first
// listing after the job created at t with id. Store drivers use it so
// cursors are portable between stores.
func EncodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(t.UnixNano(), 10) + ":" + id))
}

// DecodeCursor parses a cursor made by EncodeCursor. The error is a
// *FieldError for field "cursor".
func DecodeCursor(c string) (time.Time, string, error) {
	bad := &FieldError{Field: "cursor", Value: c, Msg: "is not a cursor returned by a previous page"}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[0] != "v1" || parts[2] == "" {
		return time.Time{}, "", bad
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return time.Time{}, "", bad
	}
	return time.Unix(0, n).UTC(), parts[2], nil
}

// Before reports whether a job (t, id) sorts after the cursor position
// (t0, id0) in newest-first order, i.e. belongs on a later page.
func Before(t time.Time, id string, t0 time.Time, id0 string) bool {
	if !t.Equal(t0) {
		return t.Before(t0)
	}
	return id < id0
}
