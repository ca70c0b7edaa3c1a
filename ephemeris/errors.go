package ephemeris

import (
	"errors"
	"fmt"
)

// ErrInvalidArgument is wrapped by every error caused by an input value out
// of range or malformed.
var ErrInvalidArgument = errors.New("ephemeris: invalid argument")

// ErrUnknownBody is wrapped when a body or target name is not known.
var ErrUnknownBody = errors.New("ephemeris: unknown body")

// FieldError reports which input field was wrong and why. It wraps
// ErrInvalidArgument or ErrUnknownBody.
type FieldError struct {
	// Field is the name of the offending input (for example "lat").
	Field string
	// Value is the offending value as given.
	Value any
	// Reason says what was wrong.
	Reason string
	// Err is the sentinel this error wraps.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s %v: %s", e.Err.Error(), e.Field, e.Value, e.Reason)
}

// Unwrap returns the wrapped sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field string, value any, reason string) error {
	return &FieldError{Field: field, Value: value, Reason: reason, Err: ErrInvalidArgument}
}
