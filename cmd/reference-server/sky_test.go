package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testPNG encodes a w x h PNG.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		img.Set(x, x%h, color.RGBA{255, 200, 50, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSkyAnnotationsAndSnapshots: notes and snapshots belong to a job and
// are seen only by its owner and admins; bad input names its field; a PNG
// larger than the side limit is refused; snapshots expire after the
// retention period.
func TestSkyAnnotationsAndSnapshots(t *testing.T) {
	ts, s := startHubServer(t, nil, testOptions(time.Hour))
	alice := ts.createUser(testAdminToken, "alice", "user")
	bob := ts.createUser(testAdminToken, "bob", "user")
	j, _ := ts.submit(alice.Token, map[string]any{"agent": "alphacal", "dataset_id": "sky-1"}, nil)

	r := ts.do("POST", "/api/v1/jobs/"+j.ID+"/annotations", alice.Token, map[string]any{"ra_deg": 10.5, "dec_deg": -20.25, "text": "  bright arc  "}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	var a annotation
	r.decode(t, &a)
	if a.JobID != j.ID || a.AuthorID != alice.ID || a.Author != "alice" || a.Text != "bright arc" || a.RA != 10.5 || a.Dec != -20.25 {
		t.Fatalf("annotation %+v", a)
	}
	ts.do("POST", "/api/v1/jobs/"+j.ID+"/annotations", testAdminToken, map[string]any{"ra_deg": 10.6, "dec_deg": -20.2, "text": "agreed", "detection": "src-3"}, nil)
	var l annotationList
	ts.do("GET", "/api/v1/jobs/"+j.ID+"/annotations", alice.Token, nil, nil).decode(t, &l)
	if len(l.Annotations) != 2 || l.Annotations[0].ID != a.ID || l.Annotations[1].Detection != "src-3" || l.Annotations[1].Author != "admin" {
		t.Fatalf("owner's list %+v", l)
	}
	// Bob sees neither the job's notes nor can he add one or delete hers.
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/jobs/" + j.ID + "/annotations"},
		{"POST", "/api/v1/jobs/" + j.ID + "/annotations"},
		{"DELETE", "/api/v1/annotations/" + a.ID},
		{"GET", "/api/v1/jobs/" + j.ID + "/snapshots"},
	} {
		var body any
		if req.method == "POST" {
			body = map[string]any{"ra_deg": 1, "dec_deg": 1, "text": "mine now"}
		}
		if r := ts.do(req.method, req.path, bob.Token, body, nil); r.status != http.StatusNotFound {
			t.Errorf("bob %s %s: %d %s, want 404", req.method, req.path, r.status, r.body)
		}
	}
	for body, field := range map[string]string{
		`{"dec_deg": 1, "text": "x"}`:                                                             "ra_deg",
		`{"ra_deg": -1, "dec_deg": 1, "text": "x"}`:                                               "ra_deg",
		`{"ra_deg": 1, "dec_deg": 91, "text": "x"}`:                                               "dec_deg",
		`{"ra_deg": 1, "text": "x"}`:                                                              "dec_deg",
		`{"ra_deg": 1, "dec_deg": 1, "text": "   "}`:                                              "text",
		`{"ra_deg": 1, "dec_deg": 1, "text": "x", "z": 1}`:                                        "z",
		`{"ra_deg": 1, "dec_deg": 1, "text": "` + strings.Repeat("é", maxAnnotationText+1) + `"}`: "text",
	} {
		r := ts.do("POST", "/api/v1/jobs/"+j.ID+"/annotations", alice.Token, body, nil)
		if e := r.apiErr(t); r.status != http.StatusBadRequest || e.Field != field {
			t.Errorf("%.60s: %d field %q (%s), want 400 naming %s", body, r.status, e.Field, e.Message, field)
		}
	}

	// Snapshots.
	img := testPNG(t, 64, 32)
	r = ts.do("POST", "/api/v1/jobs/"+j.ID+"/snapshots", alice.Token, img, map[string]string{"Content-Type": "image/png"})
	if r.status != http.StatusCreated {
		t.Fatalf("snapshot: %d %s", r.status, r.body)
	}
	var sn snapshot
	r.decode(t, &sn)
	if sn.Width != 64 || sn.Height != 32 || sn.Bytes != len(img) || r.header.Get("Location") != sn.URL || !sn.ExpiresAt.Equal(sn.CreatedAt.Add(defaultSnapshotRetention)) {
		t.Fatalf("snapshot %+v", sn)
	}
	if got := ts.do("GET", sn.URL, alice.Token, nil, nil); got.status != http.StatusOK || !bytes.Equal(got.body, img) || got.header.Get("Content-Type") != "image/png" {
		t.Fatalf("get snapshot: %d %s", got.status, got.header.Get("Content-Type"))
	}
	if got := ts.do("GET", sn.URL, bob.Token, nil, nil); got.status != http.StatusNotFound {
		t.Errorf("bob reads alice's snapshot: %d", got.status)
	}
	if got := ts.do("GET", sn.URL, testAdminToken, nil, nil); got.status != http.StatusOK {
		t.Errorf("admin reads alice's snapshot: %d", got.status)
	}
	if r := ts.do("POST", "/api/v1/jobs/"+j.ID+"/snapshots", alice.Token, testPNG(t, maxSnapshotSide+1, 1), map[string]string{"Content-Type": "image/png"}); r.status != http.StatusBadRequest || !strings.Contains(r.apiErr(t).Message, "4097x1") {
		t.Errorf("oversized PNG: %d %s", r.status, r.body)
	}
	// Past the retention period the snapshot is gone, from the list and
	// by id.
	s.sky.now = func() time.Time { return time.Now().UTC().Add(defaultSnapshotRetention + time.Minute) }
	if got := ts.do("GET", sn.URL, alice.Token, nil, nil); got.status != http.StatusNotFound {
		t.Errorf("expired snapshot: %d", got.status)
	}
	var sl snapshotList
	ts.do("GET", "/api/v1/jobs/"+j.ID+"/snapshots", alice.Token, nil, nil).decode(t, &sl)
	if len(sl.Snapshots) != 0 {
		t.Errorf("expired snapshots listed: %+v", sl)
	}
	// A job keeps its newest maxSnapshotsPerJob snapshots.
	var first string
	for i := 0; i <= maxSnapshotsPerJob; i++ {
		r := ts.do("POST", "/api/v1/jobs/"+j.ID+"/snapshots", alice.Token, testPNG(t, 2, 2), map[string]string{"Content-Type": "image/png"})
		if r.status != http.StatusCreated {
			t.Fatalf("snapshot %d: %d", i, r.status)
		}
		if i == 0 {
			var sn snapshot
			r.decode(t, &sn)
			first = sn.ID
		}
	}
	ts.do("GET", "/api/v1/jobs/"+j.ID+"/snapshots", alice.Token, nil, nil).decode(t, &sl)
	if len(sl.Snapshots) != maxSnapshotsPerJob || sl.Snapshots[0].ID == first {
		t.Errorf("%d snapshots kept (first %s), want the newest %d", len(sl.Snapshots), sl.Snapshots[0].ID, maxSnapshotsPerJob)
	}
}
