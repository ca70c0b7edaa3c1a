package main

import (
	"net/http"
)

// handleProvenance serves GET /api/v1/jobs/{id}/provenance: the job's audit
// record (orchestrator.Provenance) — who submitted it, the exact spec, the
// agent version, every backend attempt with its task id and outcome, and
// the outputs. Owners see their own jobs; admins every job.
func (s *server) handleProvenance(w http.ResponseWriter, r *http.Request, u *user) {
	j, err := s.ownedJob(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.orch.Provenance(r.Context(), j.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
