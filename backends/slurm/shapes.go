package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// noVal decodes a v0.0.38 number or null, and a v0.0.41+
// {set, infinite, number} struct. It returns nil for null, unset and
// infinite.
func noVal(raw json.RawMessage) (*int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '{' {
		var s struct {
			Set      bool  `json:"set"`
			Infinite bool  `json:"infinite"`
			Number   int64 `json:"number"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if !s.Set || s.Infinite {
			return nil, nil
		}
		return &s.Number, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	v, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil {
			return nil, err
		}
		v = int64(f)
	}
	return &v, nil
}

// UnmarshalJSON decodes a job record of either API generation: v0.0.38
// (job_state a string, exit_code a raw wait status, times plain numbers
// or null) or v0.0.41+ (job_state an array of flags, exit_code an object
// with return_code and signal, times {set, infinite, number}).
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job
	var r struct {
		plain
		JobState   json.RawMessage `json:"job_state"`
		ExitCode   json.RawMessage `json:"exit_code"`
		StartTime  json.RawMessage `json:"start_time"`
		EndTime    json.RawMessage `json:"end_time"`
		SubmitTime json.RawMessage `json:"submit_time"`
		TimeLimit  json.RawMessage `json:"time_limit"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*j = Job(r.plain)
	if len(r.JobState) > 0 && r.JobState[0] == '[' {
		var flags []string
		if err := json.Unmarshal(r.JobState, &flags); err != nil {
			return fmt.Errorf("job_state: %w", err)
		}
		j.JobState = strings.Join(flags, ",")
	} else if len(r.JobState) > 0 && string(r.JobState) != "null" {
		if err := json.Unmarshal(r.JobState, &j.JobState); err != nil {
			return fmt.Errorf("job_state: %w", err)
		}
	}
	var err error
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **int64
	}{{"start_time", r.StartTime, &j.StartTime}, {"end_time", r.EndTime, &j.EndTime}, {"submit_time", r.SubmitTime, &j.SubmitTime}, {"time_limit", r.TimeLimit, &j.TimeLimit}} {
		if *f.dst, err = noVal(f.raw); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	ec := bytes.TrimSpace(r.ExitCode)
	switch {
	case len(ec) == 0 || string(ec) == "null":
	case ec[0] == '{':
		var v struct {
			ReturnCode json.RawMessage `json:"return_code"`
			Signal     struct {
				ID json.RawMessage `json:"id"`
			} `json:"signal"`
		}
		if err := json.Unmarshal(ec, &v); err != nil {
			return fmt.Errorf("exit_code: %w", err)
		}
		sig, err := noVal(v.Signal.ID)
		if err != nil {
			return fmt.Errorf("exit_code.signal.id: %w", err)
		}
		rc, err := noVal(v.ReturnCode)
		if err != nil {
			return fmt.Errorf("exit_code.return_code: %w", err)
		}
		// Re-encode as the raw wait status v0.0.38 reports.
		switch {
		case sig != nil && *sig > 0:
			w := int(*sig & 0x7f)
			j.ExitCode = &w
		case rc != nil:
			w := int(*rc&0xff) << 8
			j.ExitCode = &w
		}
	default:
		p, err := noVal(ec)
		if err != nil {
			return fmt.Errorf("exit_code: %w", err)
		}
		if p != nil {
			w := int(*p)
			j.ExitCode = &w
		}
	}
	return nil
}
