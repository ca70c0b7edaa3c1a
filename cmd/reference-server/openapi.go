package main

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 description of the REST API, served at
// /openapi.json. TestOpenAPI drives the real server and validates every
// response it gets against this document; an endpoint added to routes
// belongs in it too.
//
//go:embed openapi.json
var openAPIDoc []byte

// handleOpenAPI serves GET /openapi.json.
func (s *server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
}
