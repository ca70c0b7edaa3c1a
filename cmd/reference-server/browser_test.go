package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cosmic-horizons/horizons/backends"
)

// skyDriver is the clock backend whose completed tasks return an
// anomaly-detection style result: detections and a transient with sky
// positions, for the sky view.
type skyDriver struct{ *clockDriver }

const skyResult = `{"summary":"done","field":{"name":"T01t01","ra_deg":150.1,"dec_deg":2.2},` +
	`"image":{"phase_centre_ra_deg":150.12,"phase_centre_dec_deg":2.22,"image_size":256,"cell_arcsec":2.0},` +
	`"detections":[{"name":"src-1","ra_deg":150.05,"dec_deg":2.21},{"name":"src-2","ra_deg":150.2,"dec_deg":2.15}],` +
	`"transients":[{"name":"tr-1","ra_deg":150.12,"dec_deg":2.3}]}`

func (d skyDriver) Status(ctx context.Context, h backends.Handle) (backends.Status, error) {
	st, err := d.clockDriver.Status(ctx, h)
	if err == nil && st.State == backends.TaskCompleted {
		st.Result = json.RawMessage(skyResult)
	}
	return st, err
}

// chromiumPath finds Debian's chromium; without it the test skips, or
// fails under HORIZONS_REQUIRE_SERVICES=1 (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium chromium-driver) and HORIZONS_REQUIRE_SERVICES=1")
	}
	t.Skip("chromium is not installed; apt-get install chromium chromium-driver to run the browser test")
	return ""
}

// artifactDir is where screenshots go: $HORIZONS_ARTIFACTS/browser when
// set (CI keeps it), else a test temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("HORIZONS_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, "browser")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestBrowserDashboard drives the dashboard in headless Chromium: load it,
// connect with a token, see the form refuse bad input, submit a job, watch
// it reach COMPLETED live over the WebSocket, open its detail (timeline,
// outputs, positions), then the sky view's fallback plot (Aladin Lite
// cannot load here) and the cluster view, with a screenshot of each page.
func TestBrowserDashboard(t *testing.T) {
	chromium := chromiumPath(t)
	shots := artifactDir(t)
	opts := testOptions(-1)
	opts.Backends = []*backends.Backend{backends.New(skyDriver{newClockDriver("clock", 1500*time.Millisecond)}, nil)}
	// A refused port: the page must fall back to its own sky plot.
	ts := startServer(t, t.TempDir(), map[string]string{envAdminToken: testAdminToken, envAladinURL: "http://127.0.0.1:9/aladin.js"}, opts)
	alice := ts.createUser(testAdminToken, "alice", "user")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	n := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
				t.Errorf("screenshot %s is not a PNG (%d bytes)", name, len(png))
			}
			n++
			return os.WriteFile(filepath.Join(shots, strconv.Itoa(n)+"-"+name+".png"), png, 0o644)
		})
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, 30*time.Second)
		defer scancel()
		for i, step := range steps {
			if err := chromedp.Do(sctx, step); err != nil {
				page, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`[document.getElementById("err").textContent, ...[...document.querySelectorAll("input")].map(i => i.id + "=" + i.value), ...[...document.querySelectorAll("small.msg, .note")].map(m => m.textContent)].join(" | ")`))
				t.Fatalf("%s, step %d: %v\npage:\n%s\nserver logs:\n%s", what, i+1, err, page, tail(ts.logs.String(), 1500))
			}
		}
	}
	_ = func(what string, steps ...chromedp.Action[chromedp.Void]) {
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v\nserver logs:\n%s", what, err, tail(ts.logs.String(), 3000))
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.AttributeValue(css(sel), name))
		if err != nil || !v.Exists {
			t.Fatalf("attribute %s of %s: %v (exists %v)", name, sel, err, v.Exists)
		}
		return v.Value
	}

	// The first call starts the browser, which lives as long as that
	// call's context: bctx, not a step's shorter one.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	do("load the dashboard and connect",
		chromedp.Navigate(ts.base+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), alice.Token),
		chromedp.Click(css("#connect")),
		chromedp.WaitVisible(css("#status.live")),
		shot("dashboard"),
	)
	if status := text("#status"); !strings.HasPrefix(status, "live") {
		t.Fatalf("status %q after connecting", status)
	}

	do("bad input is refused with messages",
		chromedp.SetValue(css("#gpus"), "99"),
		chromedp.SetValue(css("#params"), "{not json"),
		chromedp.Click(css("#submit")),
		chromedp.WaitVisible(css("input#gpus.invalid")),
		shot("validation"),
	)
	if gpuMsg, paramsMsg := text(`small.msg[data-for="gpus"]`), text(`small.msg[data-for="params"]`); !strings.Contains(gpuMsg, "0 to 64") || !strings.Contains(paramsMsg, "not valid JSON") {
		t.Fatalf("validation messages %q, %q", gpuMsg, paramsMsg)
	}
	if rows := eval(`document.querySelectorAll("#jobs tr").length`); rows != 0.0 {
		t.Fatalf("%v rows after a refused submission", rows)
	}

	// A server-side refusal shows next to its field too.
	do("server validation message",
		chromedp.SetValue(css("#gpus"), "1"),
		chromedp.SetValue(css("#params"), `{"no_such_param": 1}`),
		chromedp.Click(css("#submit")),
		chromedp.WaitVisible(css(`input#params.invalid`)),
	)
	if msg := text(`small.msg[data-for="params"]`); !strings.Contains(msg, "no_such_param") {
		t.Fatalf("server refusal not shown next to params: %q", msg)
	}

	do("submit a job and watch it run live",
		chromedp.SetValue(css("#params"), "{}"),
		chromedp.Click(css("#submit")),
		chromedp.WaitVisible(css(`#jobs tr[data-job]`)),
		chromedp.WaitVisible(css(`#jobs tr[data-state="RUNNING"]`)),
		shot("running"),
	)
	jobID := attr(`#jobs tr[data-job]`, "data-job")
	do("watch it complete live",
		chromedp.WaitVisible(css(`#jobs tr[data-state="COMPLETED"]`)),
		shot("completed"),
	)
	if got := ts.getJob(alice.Token, jobID); got.State != "COMPLETED" || got.Owner != alice.ID {
		t.Fatalf("the job the page showed: %+v", got)
	}
	if p := attr(`#jobs tr[data-state="COMPLETED"] [role=progressbar]`, "aria-valuenow"); p != "100" {
		t.Errorf("progress bar of the completed job at %s", p)
	}

	do("open the job's detail",
		chromedp.Click(css(`#jobs tr[data-job="`+jobID+`"] td.id a`)),
		chromedp.WaitVisible(css(`#timeline li[data-type="job.completed"]`)),
		chromedp.WaitVisible(css(`#job-sky svg.sky-plot`)),
		shot("detail"),
	)
	timeline, _ := eval(`[...document.querySelectorAll("#timeline li")].map(li => li.dataset.type).join(",")`).(string)
	want := ts.jobEvents(alice.Token, jobID)
	if timeline != strings.Join(types(want), ",") {
		t.Fatalf("timeline %s, want %v", timeline, types(want))
	}
	if outputs, markers := text("#outputs"), eval(`document.querySelectorAll("#job-sky .sky-marker").length`); !strings.Contains(outputs, "src-2") || markers != 4.0 {
		t.Fatalf("outputs %q, %v markers; want the result and its 4 positions", outputs, markers)
	}
	// The imaged field (256 x 2" = 0.142 deg a side) is a footprint.
	if fp := eval(`document.querySelectorAll("#job-sky rect.sky-footprint").length`); fp != 1.0 {
		t.Fatalf("%v footprints on the job's plot, want 1", fp)
	}

	// Pin a note to a detection by clicking its marker, then save a
	// snapshot of the plot.
	do("annotate and snapshot",
		// The plot is redrawn once the annotations have loaded.
		chromedp.WaitVisible(css(`#annotations li`)),
		chromedp.Click(css(`#job-sky circle.sky-marker:nth-of-type(3)`)),
		chromedp.SendKeys(css("#note-text"), "possible lobe"),
		chromedp.Click(css("#note-add")),
		chromedp.WaitVisible(css(`#annotations li[data-note]`)),
		chromedp.WaitVisible(css(`#job-sky .sky-marker.annotated`)),
		chromedp.Click(css("#snap")),
		chromedp.WaitVisible(css(`#snapshots li[data-snapshot] img`)),
		shot("annotated"),
	)
	var notes annotationList
	ts.do("GET", "/api/v1/jobs/"+jobID+"/annotations", alice.Token, nil, nil).decode(t, &notes)
	if len(notes.Annotations) != 1 || notes.Annotations[0].Text != "possible lobe" || notes.Annotations[0].Author != "alice" || notes.Annotations[0].Detection == "" {
		t.Fatalf("annotations after the form: %+v", notes)
	}
	var snaps snapshotList
	ts.do("GET", "/api/v1/jobs/"+jobID+"/snapshots", alice.Token, nil, nil).decode(t, &snaps)
	if len(snaps.Snapshots) != 1 || snaps.Snapshots[0].Width != 1200 || snaps.Snapshots[0].Height != 600 {
		t.Fatalf("snapshots after the button: %+v", snaps)
	}

	do("sky view falls back to its own plot",
		chromedp.Click(css(`nav a[data-view="sky"]`)),
		chromedp.WaitVisible(css(`#sky svg.sky-plot[data-count="4"][data-footprints="1"]`)),
		shot("sky"),
	)
	if markers, note := eval(`document.querySelectorAll("#sky .sky-marker.transient").length`), text("#sky-note"); markers != 1.0 || !strings.Contains(note, "cannot load Aladin Lite") {
		t.Fatalf("sky view: %v transient markers, note %q", markers, note)
	}

	// The workflow builder validates the DAG as it is typed, creates the
	// workflow, runs it, and the run reaches COMPLETED live.
	do("workflow builder refuses a cycle",
		chromedp.Click(css(`nav a[data-view="workflows"]`)),
		chromedp.WaitVisible(css(`#wf-steps tr.step:nth-child(2)`)),
		chromedp.SendKeys(css("#wf-name"), "vlass-field"),
		chromedp.SendKeys(css(`#wf-steps tr.step:nth-child(1) [name="depends_on"]`), "image"),
		chromedp.WaitVisible(css(`#wf-problems li`)),
		shot("workflow-cycle"),
	)
	if problems := text("#wf-problems"); !strings.Contains(problems, "cycle: calibrate -> image -> calibrate") {
		t.Fatalf("builder problems %q, want the cycle", problems)
	}
	if disabled := eval(`document.getElementById("wf-create").disabled`); disabled != true {
		t.Fatalf("create button enabled with a cycle")
	}
	do("create and run the workflow",
		chromedp.Click(css(`#wf-steps tr.step:nth-child(1) [name="depends_on"]`)),
		chromedp.KeyEvent("\b\b\b\b\b"),
		chromedp.WaitVisible(css(`#wf-dag svg rect[data-step="image"]`)),
		chromedp.Click(css("#wf-create")),
		chromedp.WaitVisible(css(`#workflows tr[data-workflow="vlass-field"] button`)),
		chromedp.Click(css(`#workflows tr[data-workflow="vlass-field"] button`)),
		chromedp.WaitVisible(css(`#runs tr[data-run]`)),
		chromedp.WaitVisible(css(`#runs tr[data-state="COMPLETED"]`)),
		shot("workflow-run"),
	)
	if steps := text(`#runs tr[data-state="COMPLETED"]`); !strings.Contains(steps, "calibrate: COMPLETED") || !strings.Contains(steps, "image: COMPLETED") {
		t.Errorf("completed run row %q", steps)
	}

	do("cluster view",
		chromedp.Click(css(`nav a[data-view="cluster"]`)),
		chromedp.WaitVisible(css(`#chart-latency[data-points]`)),
		shot("cluster"),
	)
	if note := text("#heatmap-note"); !strings.Contains(note, "backend(s)") {
		t.Errorf("heatmap note %q", note)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestBrowserCluster: on the simulated GPU cluster, the cluster view draws
// the utilisation heatmap of all 16 GPUs while jobs run, and the charts.
func TestBrowserCluster(t *testing.T) {
	chromium := chromiumPath(t)
	shots := artifactDir(t)
	ts := startServer(t, t.TempDir(), map[string]string{envAdminToken: testAdminToken, envSimSpeedUp: "60"}, testOptions(-1))
	for i := 0; i < 3; i++ {
		if _, r := ts.submit(testAdminToken, map[string]any{"agent": "alphacal", "dataset_id": "VLASS-heat-" + strconv.Itoa(i), "gpus": 2}, nil); r.status != 201 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	err := chromedp.Do(bctx,
		chromedp.Navigate(ts.base+"/#/cluster"),
		chromedp.SendKeys(chromedp.CSS("#token"), testAdminToken),
		chromedp.Click(chromedp.CSS("#connect")),
		chromedp.WaitVisible(chromedp.CSS("#status.live")),
		// Three samples: two chart points.
		chromedp.WaitVisible(chromedp.CSS(`#chart-latency[data-points="2"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	note, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#heatmap-note")))
	if err != nil || !strings.HasPrefix(note, "16 GPUs on 1 backend(s)") {
		t.Fatalf("heatmap note %q (%v), want 16 GPUs", note, err)
	}
	// Some cell of the heatmap is not the idle colour: a GPU is busy.
	busy, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
		const c = document.getElementById("heatmap"), d = c.getContext("2d").getImageData(120, 0, c.width - 120, c.height).data;
		const idle = [230, 236, 253]; // hsl(220,80%,92%)
		for (let i = 0; i < d.length; i += 4) if (d[i+3] && Math.abs(d[i] - idle[0]) + Math.abs(d[i+1] - idle[1]) + Math.abs(d[i+2] - idle[2]) > 40) return true;
		return false;
	})()`))
	if err != nil || !busy {
		t.Errorf("heatmap shows no busy GPU (err %v)", err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(shots, "cluster-simgpu.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
