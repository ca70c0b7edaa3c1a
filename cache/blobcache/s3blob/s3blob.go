// Package s3blob is a blobcache.Bucket in an S3-compatible object store
// (AWS S3, MinIO, Ceph RGW, ...) on github.com/minio/minio-go/v7. A PUT
// replaces an object atomically, as blobcache.Bucket requires. Expired
// entries are dropped when read; a bucket lifecycle rule on the prefix (or
// blobcache.Tier.Sweep) removes the ones never read again.
package s3blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/blobcache"
)

// Config names the bucket and, for Open, how to reach it.
type Config struct {
	// Endpoint is host:port of the S3 service (Open only).
	Endpoint string
	// AccessKey and SecretKey are the static credentials (Open only); the
	// secret never appears in errors.
	AccessKey, SecretKey string
	// Secure selects HTTPS (Open only).
	Secure bool
	// Bucket holds the objects; it must exist. Required.
	Bucket string
	// Prefix starts every object name (default "horizons-cache/").
	Prefix string
}

// Bucket is the S3 blobcache.Bucket.
type Bucket struct {
	c      *minio.Client
	bucket string
	prefix string
}

// New returns the bucket on an existing client.
func New(c *minio.Client, cfg Config) (*Bucket, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: s3blob.New: nil client", cache.ErrInvalidArgument)
	}
	if strings.TrimSpace(cfg.Bucket) == "" {
		return nil, fmt.Errorf("%w: s3blob: Config.Bucket is empty", cache.ErrInvalidArgument)
	}
	p := cfg.Prefix
	if p == "" {
		p = "horizons-cache/"
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return &Bucket{c: c, bucket: cfg.Bucket, prefix: p}, nil
}

// Open connects to cfg.Endpoint with static credentials and returns a
// blobcache tier named "s3" over the bucket.
func Open(cfg Config) (*blobcache.Tier, error) {
	if strings.TrimSpace(cfg.Endpoint) == "" {
		return nil, fmt.Errorf("%w: s3blob: Config.Endpoint is empty", cache.ErrInvalidArgument)
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		msg := err.Error()
		if cfg.SecretKey != "" {
			msg = strings.ReplaceAll(msg, cfg.SecretKey, "xxxxx")
		}
		return nil, fmt.Errorf("%w: s3blob: endpoint %q: %s", cache.ErrInvalidArgument, cfg.Endpoint, msg)
	}
	b, err := New(c, cfg)
	if err != nil {
		return nil, err
	}
	return blobcache.New(b, &blobcache.Config{Name: "s3"})
}

func (b *Bucket) wrap(op, name string, err error) error {
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return fmt.Errorf("%w: s3 object %s", cache.ErrNotFound, b.prefix+name)
	}
	return fmt.Errorf("%w: s3 %s %s/%s: %w", cache.ErrUnavailable, op, b.bucket, b.prefix+name, err)
}

// Read implements blobcache.Bucket.
func (b *Bucket) Read(ctx context.Context, name string) ([]byte, error) {
	obj, err := b.c.GetObject(ctx, b.bucket, b.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap("get", name, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, b.wrap("get", name, err)
	}
	return data, nil
}

// Write implements blobcache.Bucket.
func (b *Bucket) Write(ctx context.Context, name string, data []byte) error {
	_, err := b.c.PutObject(ctx, b.bucket, b.prefix+name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return b.wrap("put", name, err)
	}
	return nil
}

// Remove implements blobcache.Bucket.
func (b *Bucket) Remove(ctx context.Context, name string) error {
	if err := b.c.RemoveObject(ctx, b.bucket, b.prefix+name, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return b.wrap("delete", name, err)
	}
	return nil
}

// List implements blobcache.Bucket.
func (b *Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for o := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, b.wrap("list", prefix, o.Err)
		}
		out = append(out, strings.TrimPrefix(o.Key, b.prefix))
	}
	return out, nil
}
