// Package blobcache is the object-store tier of the cache package: entries as
// objects in a Bucket. The embedded default is a directory on disk (NewDir,
// atomic writes by rename); cache/blobcache/s3blob stores them in an
// S3-compatible bucket.
//
// An entry is stored under e/<h[:2]>/<h>, where h is the hex SHA-256 of its
// key, in the binary form of cache.MarshalEntry, which carries the key: a
// read of a key whose hash collides with another key's is a miss, never the
// other key's value. Each tag of an entry is a small reference object
// t/<hash(tag)>/<hash(key)> holding the key; DeleteTag lists them.
package blobcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/horizons/cache"
)

// Bucket is the storage a Tier keeps its objects in. Names are
// slash-separated and made of [0-9a-f/]. Read of an absent object returns an
// error wrapping cache.ErrNotFound; Write replaces an object atomically (a
// reader sees the old or the new bytes, never a mix); Remove of an absent
// object succeeds; List returns the names under prefix.
type Bucket interface {
	Read(ctx context.Context, name string) ([]byte, error)
	Write(ctx context.Context, name string, data []byte) error
	Remove(ctx context.Context, name string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// Config configures New. A nil *Config means the defaults.
type Config struct {
	// Name is the tier's name in stats (default "disk").
	Name string
	// Hash maps a key or tag to the hex name of its object (default
	// SHA-256). Tests replace it to force collisions.
	Hash func(string) string
	// Now is the clock for expiry (default time.Now).
	Now func() time.Time
	// Close, when set, is called by Tier.Close (e.g. to close a client).
	Close func() error
}

// Tier stores entries in a Bucket.
type Tier struct {
	b      Bucket
	name   string
	hash   func(string) string
	now    func() time.Time
	close  func() error
	closed atomic.Bool
}

// Hash is the default name hash: hex SHA-256.
func Hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// New returns a tier over b.
func New(b Bucket, cfg *Config) (*Tier, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: blobcache.New: nil bucket", cache.ErrInvalidArgument)
	}
	t := &Tier{b: b, name: "disk", hash: Hash, now: time.Now}
	if cfg != nil {
		if cfg.Name != "" {
			t.name = cfg.Name
		}
		if cfg.Hash != nil {
			t.hash = cfg.Hash
		}
		if cfg.Now != nil {
			t.now = cfg.Now
		}
		t.close = cfg.Close
	}
	return t, nil
}

// OpenDir returns a tier over the directory dir (created if missing).
func OpenDir(dir string, cfg *Config) (*Tier, error) {
	d, err := NewDir(dir)
	if err != nil {
		return nil, err
	}
	return New(d, cfg)
}

func (t *Tier) entryName(key string) string {
	h := t.hash(key)
	if len(h) < 2 {
		h = "00" + h
	}
	return "e/" + h[:2] + "/" + h
}

func (t *Tier) refName(tag, key string) string { return "t/" + t.hash(tag) + "/" + t.hash(key) }

func (t *Tier) check(op, arg string) error {
	if t.closed.Load() {
		return fmt.Errorf("%w: blobcache %s: %s %q", cache.ErrClosed, t.name, op, arg)
	}
	return nil
}

// Name implements cache.Tier.
func (t *Tier) Name() string { return t.name }

// Get implements cache.Tier. An object that does not decode (a torn write
// after a crash) or belongs to another key is a miss.
func (t *Tier) Get(ctx context.Context, key string) (cache.Entry, error) {
	if err := t.check("get", key); err != nil {
		return cache.Entry{}, err
	}
	name := t.entryName(key)
	b, err := t.b.Read(ctx, name)
	if err != nil {
		return cache.Entry{}, fmt.Errorf("blobcache %s: get %q: %w", t.name, key, err)
	}
	e, err := cache.UnmarshalEntry(b)
	if err != nil {
		_ = t.b.Remove(ctx, name)
		return cache.Entry{}, fmt.Errorf("%w: key %q: %w", cache.ErrNotFound, key, err)
	}
	if e.Key != key {
		return cache.Entry{}, fmt.Errorf("%w: key %q (its object holds key %q)", cache.ErrNotFound, key, e.Key)
	}
	if e.Expired(t.now()) {
		_ = t.b.Remove(ctx, name)
		return cache.Entry{}, fmt.Errorf("%w: key %q (expired)", cache.ErrNotFound, key)
	}
	return e, nil
}

// Set implements cache.Tier. Tag references are written before the entry, so
// a crash in between leaves only a harmless dangling reference.
func (t *Tier) Set(ctx context.Context, e cache.Entry) error {
	if err := t.check("set", e.Key); err != nil {
		return err
	}
	if e.Expired(t.now()) {
		return t.Delete(ctx, e.Key)
	}
	for _, tag := range e.Tags {
		if err := t.b.Write(ctx, t.refName(tag, e.Key), []byte(e.Key)); err != nil {
			return fmt.Errorf("blobcache %s: set %q: tag %q: %w", t.name, e.Key, tag, err)
		}
	}
	if err := t.b.Write(ctx, t.entryName(e.Key), cache.MarshalEntry(e)); err != nil {
		return fmt.Errorf("blobcache %s: set %q: %w", t.name, e.Key, err)
	}
	return nil
}

// Delete implements cache.Tier. The entry's tag references stay until their
// tag is deleted or Sweep runs.
func (t *Tier) Delete(ctx context.Context, key string) error {
	if err := t.check("delete", key); err != nil {
		return err
	}
	if err := t.b.Remove(ctx, t.entryName(key)); err != nil {
		return fmt.Errorf("blobcache %s: delete %q: %w", t.name, key, err)
	}
	return nil
}

// DeleteTag implements cache.Tier: it removes the entries whose references
// are under the tag and that still carry it, then the references.
func (t *Tier) DeleteTag(ctx context.Context, tag string) error {
	if err := t.check("delete tag", tag); err != nil {
		return err
	}
	refs, err := t.b.List(ctx, "t/"+t.hash(tag)+"/")
	if err != nil {
		return fmt.Errorf("blobcache %s: delete tag %q: %w", t.name, tag, err)
	}
	var errs []error
	for _, ref := range refs {
		key, err := t.b.Read(ctx, ref)
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if err == nil {
			name := t.entryName(string(key))
			if b, err := t.b.Read(ctx, name); err == nil {
				if e, err := cache.UnmarshalEntry(b); err != nil || e.HasTag(tag) {
					if err := t.b.Remove(ctx, name); err != nil {
						errs = append(errs, err)
						continue
					}
				}
			} else if !errors.Is(err, cache.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
		}
		if err := t.b.Remove(ctx, ref); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("blobcache %s: delete tag %q: %w", t.name, tag, err)
	}
	return nil
}

// Sweep removes expired and undecodable entries and returns how many it
// removed; run it now and then (an object store's lifecycle rules can do
// the same).
func (t *Tier) Sweep(ctx context.Context) (int, error) {
	if err := t.check("sweep", t.name); err != nil {
		return 0, err
	}
	names, err := t.b.List(ctx, "e/")
	if err != nil {
		return 0, fmt.Errorf("blobcache %s: sweep: %w", t.name, err)
	}
	n := 0
	now := t.now()
	for _, name := range names {
		b, err := t.b.Read(ctx, name)
		if err != nil {
			continue
		}
		if e, err := cache.UnmarshalEntry(b); err != nil || e.Expired(now) {
			if t.b.Remove(ctx, name) == nil {
				n++
			}
		}
	}
	return n, ctx.Err()
}

// Close implements cache.Tier.
func (t *Tier) Close() error {
	if t.closed.Swap(true) || t.close == nil {
		return nil
	}
	return t.close()
}

// Dir is a Bucket in a directory on disk: one file per object, written to a
// temporary file in the same directory and renamed into place.
type Dir struct {
	root string
}

// NewDir returns the Bucket in dir, creating it if needed.
func NewDir(dir string) (*Dir, error) {
	if strings.TrimSpace(dir) == "" {
		return nil, fmt.Errorf("%w: blobcache: directory is empty", cache.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: blobcache: directory %q: %v", cache.ErrInvalidArgument, dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("%w: blobcache: creating directory %q: %w", cache.ErrUnavailable, dir, err)
	}
	return &Dir{root: abs}, nil
}

func (d *Dir) path(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: blobcache: object name %q", cache.ErrInvalidArgument, name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// Read implements Bucket.
func (d *Dir) Read(_ context.Context, name string) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: object %s", cache.ErrNotFound, name)
	}
	return b, err
}

// Write implements Bucket: write a temporary file, then rename it over the
// object.
func (d *Dir) Write(_ context.Context, name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// Remove implements Bucket.
func (d *Dir) Remove(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// List implements Bucket; prefix must end at a directory boundary ("e/",
// "t/<hash>/").
func (d *Dir) List(_ context.Context, prefix string) ([]string, error) {
	p, err := d.path(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.IsDir() || strings.HasPrefix(de.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}
