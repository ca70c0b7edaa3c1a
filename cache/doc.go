// Package cache is a multi-tier cache for the Cosmic Horizons SDK.
//
// Users work with the concrete [Tiered] cache; implementers of storage write
// a small [Tier] driver. A Tiered cache reads through its tiers in order
// (typically the in-process [Memory] tier, then Redis from
// cache/rediscache, then a disk directory or S3 bucket from
// cache/blobcache), promotes an entry found in a lower tier to the tiers
// above it, and writes through every tier or, with [WriteBehind], writes the
// first tier at once and the others from a background queue.
//
// [Tiered.GetOrLoad] (and the typed [Load]) loads a missing value once
// however many callers ask for it at the same moment, and caches a
// "not found" answer of the loader (an error wrapping [ErrNotFound]) for
// Config.NegativeTTL. Values are encoded by a pluggable [Codec] (JSON by
// default). Entries expire by TTL and are dropped by key ([Tiered.Delete])
// or by tag ([Tiered.DeleteTag]); cache/cacheevents drops the entries tagged
// with a job id (see [JobTag]) when the job changes state. A [Warmer]
// reloads a set of keys on a schedule. [Tiered.Stats] reports hits,
// misses, loads, evictions and errors per tier, and [NewCollector] exports
// them to Prometheus.
//
// A tier that fails (Redis refusing connections, a full disk) never fails a
// read: the cache counts the error in the tier's stats, serves from the other
// tiers, leaves the failed tier alone for Config.RetryAfter and then tries it
// again. Every entry carries its own key, and the cache checks it on every
// read, so a hash collision or a shared prefix in a driver can never return
// another key's value.
//
// Driver packages that import heavy client libraries (go-redis, minio-go)
// live in subpackages; this package imports only otter and the Prometheus
// client.
package cache
