package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/deadletters"
	"github.com/cosmic-horizons/horizons/events/health"
)

// eventRoutes adds the admin endpoints of the event system: dead letters,
// the audit chain, replays and the health report. Every one needs an admin
// token; anyone else gets 403.
func (s *server) eventRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/admin/dead-letters", s.admin(s.handleListDeadLetters))
	mux.HandleFunc("GET /api/v1/admin/dead-letters/{id}", s.admin(s.handleGetDeadLetter))
	mux.HandleFunc("POST /api/v1/admin/dead-letters/{id}/replay", s.admin(s.handleReplayDeadLetter))
	mux.HandleFunc("GET /api/v1/admin/audit", s.admin(s.handleAudit))
	mux.HandleFunc("POST /api/v1/admin/audit/verify", s.admin(s.handleAuditVerify))
	mux.HandleFunc("POST /api/v1/admin/replay", s.admin(s.handleReplay))
	mux.HandleFunc("GET /api/v1/admin/events/health", s.admin(s.handleEventsHealth))
}

// admin wraps h so that only an administrator reaches it.
func (s *server) admin(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return s.authed(false, func(w http.ResponseWriter, r *http.Request, u *user) {
		if !u.isAdmin() {
			s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "this endpoint needs an admin token"})
			return
		}
		h(w, r, u)
	})
}

func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(name, "%s = %q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

type deadLetterList struct {
	DeadLetters []deadletters.Letter `json:"dead_letters"`
	// Next is the id to pass as ?after= for the next page; empty on the
	// last page.
	Next string `json:"next,omitempty"`
}

// handleListDeadLetters serves GET /api/v1/admin/dead-letters
// [?topic=&handler=&job_id=&limit=&after=], oldest first, without payloads.
func (s *server) handleListDeadLetters(w http.ResponseWriter, r *http.Request, u *user) {
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	ls, err := s.evs.box.List(r.Context(), deadletters.ListQuery{
		Topic: q.Get("topic"), Handler: q.Get("handler"), Subject: q.Get("job_id"), Limit: limit, After: q.Get("after"),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := deadLetterList{DeadLetters: ls}
	if out.DeadLetters == nil {
		out.DeadLetters = []deadletters.Letter{}
	}
	if len(ls) == limit {
		out.Next = ls[len(ls)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) deadLetterError(err error, id string) error {
	if errors.Is(err, deadletters.ErrNotFound) {
		return notFound("dead letter", id)
	}
	return err
}

// handleGetDeadLetter serves GET /api/v1/admin/dead-letters/{id}: the dead
// letter with its payload, metadata and decoded event.
func (s *server) handleGetDeadLetter(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	l, err := s.evs.box.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, s.deadLetterError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// handleReplayDeadLetter serves POST /api/v1/admin/dead-letters/{id}/replay:
// the message goes back to the topic it came from.
func (s *server) handleReplayDeadLetter(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	l, err := s.evs.box.Replay(r.Context(), id, s.bus.Publisher())
	if err != nil {
		s.writeError(w, r, s.deadLetterError(err, id))
		return
	}
	s.log.Info("dead letter replayed", "id", id, "topic", l.Topic, "by", u.Name)
	writeJSON(w, http.StatusOK, l)
}

type auditRecord struct {
	Seq      int64        `json:"seq"`
	Event    events.Event `json:"event"`
	PrevHash string       `json:"prev_hash"`
	Hash     string       `json:"hash"`
}

type auditList struct {
	Records []auditRecord `json:"records"`
	// Next is the seq to pass as ?from= for the next page; zero on the
	// last page.
	Next int64 `json:"next,omitempty"`
}

// handleAudit serves GET /api/v1/admin/audit[?job_id=&from=&limit=]: the
// chain's records in order, optionally of one job only.
func (s *server) handleAudit(w http.ResponseWriter, r *http.Request, u *user) {
	limit, err := queryInt(r, "limit", 500, 1, 5000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	from, err := queryInt(r, "from", 1, 1, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	job := r.URL.Query().Get("job_id")
	out := auditList{Records: []auditRecord{}}
	const page = 1000
	next := int64(from)
	for len(out.Records) < limit {
		recs, err := s.evs.chain.Records(r.Context(), next, page)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, rec := range recs {
			next = rec.Seq + 1
			if job != "" && rec.Event.Subject != job {
				continue
			}
			out.Records = append(out.Records, auditRecord{Seq: rec.Seq, Event: rec.Event, PrevHash: rec.PrevHash.String(), Hash: rec.Hash.String()})
			if len(out.Records) == limit {
				out.Next = next
				break
			}
		}
		if len(recs) < page {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type verifyResponse struct {
	OK       bool   `json:"ok"`
	Records  int64  `json:"records"`
	FirstBad int64  `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Head     string `json:"head"`
}

// handleAuditVerify serves POST /api/v1/admin/audit/verify: it walks the
// chain and reports the first tampered or missing record.
func (s *server) handleAuditVerify(w http.ResponseWriter, r *http.Request, u *user) {
	rep, err := s.evs.chain.Verify(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !rep.OK {
		s.log.Warn("audit chain verification failed", "first_bad", rep.FirstBad, "problem", rep.Problem, "detail", rep.Detail)
	}
	writeJSON(w, http.StatusOK, verifyResponse{
		OK: rep.OK, Records: rep.Records, FirstBad: rep.FirstBad, Problem: string(rep.Problem), Detail: rep.Detail, Head: rep.Head.String(),
	})
}

type replayRequest struct {
	JobID    string `json:"job_id"`
	Consumer string `json:"consumer"`
	After    int64  `json:"after"`
	From     string `json:"from"`
	To       string `json:"to"`
}

type replayResponse struct {
	JobID     string `json:"job_id,omitempty"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Consumer  string `json:"consumer"`
	Delivered int    `json:"delivered"`
}

// handleReplay serves POST /api/v1/admin/replay. With {"job_id",
// "consumer", "after"} it re-delivers the job's history from the job store,
// in sequence order, to the named consumer ("notifications" or "audit");
// with {"from", "to" (optional), "consumer", "job_id" (optional)} it
// re-delivers every event whose time is in [from, to), from the audit
// chain, in the order it was recorded. Consumers skip what they applied
// already.
func (s *server) handleReplay(w http.ResponseWriter, r *http.Request, u *user) {
	var req replayRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	h, ok := s.consumerHandler(req.Consumer)
	if !ok {
		s.writeError(w, r, badRequest("consumer", "consumer = %q: want %q, %q or %q", req.Consumer, consumerNotifications, consumerAudit, consumerMetrics))
		return
	}
	if req.After < 0 {
		s.writeError(w, r, badRequest("after", "after = %d: want a sequence number >= 0", req.After))
		return
	}
	var n int
	var err error
	switch {
	case req.From != "":
		from, perr := time.Parse(time.RFC3339Nano, req.From)
		if perr != nil {
			s.writeError(w, r, badRequest("from", "from = %q: want an RFC 3339 time such as 2026-11-27T03:00:00Z", req.From))
			return
		}
		var to time.Time
		if req.To != "" {
			if to, perr = time.Parse(time.RFC3339Nano, req.To); perr != nil || !from.Before(to) {
				s.writeError(w, r, badRequest("to", "to = %q: want an RFC 3339 time after from", req.To))
				return
			}
		}
		n, err = s.evs.chain.ReplayRange(r.Context(), from, to, req.JobID, h)
	case req.JobID != "":
		if _, err := s.store.GetJob(r.Context(), req.JobID); err != nil {
			s.writeError(w, r, err)
			return
		}
		n, err = events.ReplayJob(r.Context(), s.store, req.JobID, req.After, h)
	default:
		s.writeError(w, r, badRequest("job_id", "give job_id (a job's history) or from (a time range)"))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("events replayed", "job", req.JobID, "from", req.From, "to", req.To, "consumer", req.Consumer, "events", n, "by", u.Name)
	writeJSON(w, http.StatusOK, replayResponse{JobID: req.JobID, From: req.From, To: req.To, Consumer: req.Consumer, Delivered: n})
}

// handleEventsHealth serves GET /api/v1/admin/events/health: a fresh
// health report of the event system (the same as the system.health
// events).
func (s *server) handleEventsHealth(w http.ResponseWriter, r *http.Request, u *user) {
	rep := s.evs.health.Check(r.Context())
	status := http.StatusOK
	if rep.Status == health.Unhealthy {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}
