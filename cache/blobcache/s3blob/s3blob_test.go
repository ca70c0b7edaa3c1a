package s3blob_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/blobcache"
	"github.com/cosmic-horizons/horizons/cache/blobcache/s3blob"
	"github.com/cosmic-horizons/horizons/cache/cachetest"
)

var ctx = context.Background()

// fakeS3 starts an in-process S3-protocol server with one bucket and
// returns its endpoint.
func fakeS3(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4("id", "secret-key", ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, "cache", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return endpoint
}

var seq atomic.Int64

func TestConformance(t *testing.T) {
	endpoint := fakeS3(t)
	cachetest.Run(t, func(t *testing.T) cache.Tier {
		tier, err := s3blob.Open(s3blob.Config{Endpoint: endpoint, AccessKey: "id", SecretKey: "secret-key",
			Bucket: "cache", Prefix: fmt.Sprintf("test-%d/", seq.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		return tier
	}, nil)
}

func TestTieredOverS3(t *testing.T) {
	tier, err := s3blob.Open(s3blob.Config{Endpoint: fakeS3(t), AccessKey: "id", SecretKey: "secret-key", Bucket: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := cache.NewMemory(nil)
	c, err := cache.New([]cache.Tier{mem, tier}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "image/J1234+5678", []float64{1, 2, 3}, time.Hour, cache.JobTag("j1")); err != nil {
		t.Fatal(err)
	}
	_ = mem.Delete(ctx, "image/J1234+5678") // only S3 holds it now
	var v []float64
	if err := c.Get(ctx, "image/J1234+5678", &v); err != nil || len(v) != 3 {
		t.Fatalf("Get through S3 = %v, %v", v, err)
	}
	if st := c.Stats().Tiers; st[1].Hits != 1 || st[0].Sets != 2 {
		t.Fatalf("expected an S3 hit promoted to memory: %+v", st)
	}
	if err := c.DeleteTag(ctx, cache.JobTag("j1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "image/J1234+5678", &v); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get after DeleteTag = %v", err)
	}
}

func TestUnreachableAndBadConfig(t *testing.T) {
	tier, err := s3blob.Open(s3blob.Config{Endpoint: "127.0.0.1:1", AccessKey: "id", SecretKey: "s3cret-key", Bucket: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = tier.Get(short, "k")
	if !errors.Is(err, cache.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), `"k"`) {
		t.Fatalf("Get from an unreachable S3 = %v, want ErrUnavailable naming the key, without the secret", err)
	}
	if _, err := s3blob.Open(s3blob.Config{Endpoint: "127.0.0.1:1"}); !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "Bucket") {
		t.Fatalf("Open without a bucket = %v", err)
	}
	if _, err := s3blob.Open(s3blob.Config{Bucket: "b"}); !errors.Is(err, cache.ErrInvalidArgument) || !strings.Contains(err.Error(), "Endpoint") {
		t.Fatalf("Open without an endpoint = %v", err)
	}
	var _ blobcache.Bucket = (*s3blob.Bucket)(nil)
}
