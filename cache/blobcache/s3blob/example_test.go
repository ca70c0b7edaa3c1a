package s3blob_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cosmic-horizons/horizons/cache"
	"github.com/cosmic-horizons/horizons/cache/blobcache/s3blob"
)

// An S3 tier; here against an in-process S3 server, in production against
// AWS S3 or MinIO.
func ExampleOpen() {
	ctx := context.Background()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	admin, _ := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4("id", "secret", ""), BucketLookup: minio.BucketLookupPath})
	_ = admin.MakeBucket(ctx, "vlass-cache", minio.MakeBucketOptions{})

	s3, err := s3blob.Open(s3blob.Config{Endpoint: endpoint, AccessKey: "id", SecretKey: "secret", Bucket: "vlass-cache"})
	if err != nil {
		panic(err)
	}
	c, _ := cache.New([]cache.Tier{s3}, nil)
	defer c.Close()
	_ = c.Set(ctx, "cutout/J1234+5678", "fits bytes", time.Hour)
	var s string
	fmt.Println(c.Get(ctx, "cutout/J1234+5678", &s), s)
	// Output: <nil> fits bytes
}
