// Package llm is the optional language-model advisor of Cosmic Horizons: a
// small client for the Ollama REST API and an [Advisor] that reviews a
// job's parameters before it runs.
//
// [Client] speaks POST /api/chat, POST /api/generate and GET /api/tags with
// "stream": false (a server that streams anyway is read to the end and the
// parts joined), a per-call timeout, and bounded exponential-backoff
// retries through go-retryablehttp on connection errors and 5xx answers;
// 4xx answers are never retried. Structured answers use the request's
// format field as a JSON Schema ([Schema]), and the same schema is enforced
// on the reply.
//
// [Advisor] validates parameters through the agents registry, estimates the
// duration with the agents' Amdahl model and applies a deterministic rule
// table drawn from the tools' published defaults (AOFlagger, CASA tclean,
// VLASS quick-look, Aegean, the VAST pipeline). The verdict is approve,
// warn or reject, with one-line feedback and a score. When an Ollama
// client is configured the LLM answers instead, unless the rules reject the
// job; when Ollama is absent, slow, failing or answers nonsense (not JSON,
// outside the schema, or a duration estimate more than a factor 10 off the
// model's), the rules answer and [Advice] says so in Source and
// FallbackReason. The advisor never needs Ollama: it is the embedded
// default's "deterministic rules" and the oracle in tests.
//
// The package imports only the standard library, go-retryablehttp and
// package agents.
package llm
