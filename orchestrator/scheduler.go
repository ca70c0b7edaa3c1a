package orchestrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
)

// ---------------------------------------------------------------------------
// Leases
//
// Several orchestrators (replicas) may share one store. A job that is placed
// on a backend carries a lease: LeaseHolder names the replica that follows it
// and LeaseExpiresAt says until when. Only the holder polls the backend and
// moves the job; every replica renews its leases with one RenewLeases call per
// HeartbeatInterval, and every write the holder makes renews the lease of that
// job too. A replica that stops heartbeating (it crashed, or lost the
// database) loses its jobs once their leases expire: the next replica that
// sees them takes them over (a version-checked UpdateJob, so exactly one
// wins) and reconciles them with the backend through Recover.
//
// A placement is recorded before the backend sees the task: the claim stores
// the backend, the attempt number and the lease, and only then is the task
// submitted under the deterministic id "<job id>-<attempt>". A crash between
// the two leaves a claimed job without an external id; whoever holds the job
// next submits the same task id again, which a backend that de-duplicates by
// Task.ID (simgpu, local, and Slurm through the job name) answers with the
// first handle. No job therefore ever has two attempts running at once.

func (o *Orchestrator) leaseLive(j *Job, now time.Time) bool {
	return j.LeaseHolder != "" && j.LeaseExpiresAt.After(now)
}

// stampLease refreshes the lease of a job this replica holds, and drops the
// lease of a finished job.
func (o *Orchestrator) stampLease(n *Job) {
	switch {
	case n.State.Terminal():
		n.LeaseHolder, n.LeaseExpiresAt = "", time.Time{}
	case n.LeaseHolder == o.cfg.ReplicaID:
		n.LeaseExpiresAt = o.now().Add(o.cfg.LeaseTTL)
	}
}

func (o *Orchestrator) heartbeatLoop(ctx context.Context) {
	defer o.wg.Done()
	t := time.NewTicker(o.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := o.store.RenewLeases(ctx, o.cfg.ReplicaID, o.now().Add(o.cfg.LeaseTTL)); err != nil && ctx.Err() == nil {
				o.log.Warn("heartbeat: renew leases", "replica", o.cfg.ReplicaID, "err", err)
			}
		}
	}
}

// closeAttempt ends the open attempt of n, if any.
func closeAttempt(n *Job, outcome State, reason string, at time.Time) {
	if a := n.openAttempt(); a != nil {
		a.Outcome, a.Reason, a.EndedAt = outcome, reason, at
	}
}

// AgentVersion identifies an agent definition: its name and a digest of
// its descriptor (parameters, defaults and performance model), so a job's
// provenance shows which definition accepted and ran it.
func AgentVersion(d agents.Descriptor) string {
	raw, err := json.Marshal(d)
	if err != nil {
		return d.Name
	}
	sum := sha256.Sum256(raw)
	return d.Name + "@sha256:" + hex.EncodeToString(sum[:6])
}

// ---------------------------------------------------------------------------
// Recovery

// recover runs when the orchestrator starts: it queues jobs left SUBMITTED
// and reconciles, through the backends' Recover, every placed job that is
// this replica's or whose lease has expired.
func (o *Orchestrator) recover(ctx context.Context) error {
	jobs, err := o.listAll(ctx, []State{StateSubmitted})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if _, err := o.transition(ctx, j, StateQueued, events.JobQueued, "queued after restart", nil); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return o.monitorPass(ctx, true)
}

func (o *Orchestrator) listAll(ctx context.Context, states []State) ([]*Job, error) {
	var out []*Job
	q := ListQuery{States: states, Limit: MaxPageSize}
	for {
		p, err := o.store.ListJobs(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Jobs...)
		if p.NextCursor == "" {
			return out, nil
		}
		q.Cursor = p.NextCursor
	}
}

// ---------------------------------------------------------------------------
// Scheduler and monitor

func (o *Orchestrator) runLoop(ctx context.Context) {
	defer o.wg.Done()
	sched := time.NewTicker(o.cfg.ScheduleInterval)
	poll := time.NewTicker(o.cfg.PollInterval)
	defer sched.Stop()
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.schedKick:
			o.schedule(ctx)
		case <-sched.C:
			o.schedule(ctx)
		case <-poll.C:
			o.monitor(ctx)
			o.schedule(ctx)
		}
	}
}

type slot struct {
	b    *backends.Backend
	caps backends.Capabilities
	cap  backends.Capacity
	ok   bool
}

// claimBatch is how many ready jobs one scheduling round reserves.
const claimBatch = 64

// schedule places ready jobs: higher priority first; within a priority, the
// owner with the fewest placed jobs next (fair share), oldest job first;
// owners at their quota wait. Each job goes to the backend that can run it
// (capabilities) and has the most room for it now (free capacity). The
// candidates are reserved for this replica (Store.ClaimReady) so replicas
// never compete for the same job; what a round does not place is released.
func (o *Orchestrator) schedule(ctx context.Context) {
	subs, err := o.listAll(ctx, []State{StateSubmitted})
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("scheduler: list submitted jobs", "err", err)
		}
		return
	}
	for _, j := range subs {
		if _, err := o.transition(ctx, j, StateQueued, events.JobQueued, "accepted", nil); err != nil && !errors.Is(err, ErrConflict) {
			o.log.Warn("scheduler: queue submitted job", "job", j.ID, "err", err)
		}
	}
	slots := make([]*slot, 0, len(o.cfg.Backends))
	for _, b := range o.cfg.Backends {
		s := &slot{b: b}
		caps, err1 := b.Capabilities(ctx)
		capy, err2 := b.Capacity(ctx)
		if err1 == nil && err2 == nil {
			s.caps, s.cap, s.ok = caps, capy, true
		} else {
			o.log.Warn("scheduler: backend unavailable", "backend", b.Name(), "err", errors.Join(err1, err2))
		}
		slots = append(slots, s)
	}
	room := func() bool { return anyOK(slots, func(s *slot) bool { return s.ok && s.cap.FreeSlots != 0 }) }
	if !room() {
		return
	}
	usage, err := o.store.PlacedUsage(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("scheduler: placed usage", "err", err)
		}
		return
	}
	reserved := false
	defer func() {
		if reserved {
			if err := o.store.ReleaseUnplaced(context.WithoutCancel(ctx), o.cfg.ReplicaID); err != nil {
				o.log.Warn("scheduler: release reservations", "err", err)
			}
		}
	}()
	for round := 0; round < 50 && room() && ctx.Err() == nil; round++ {
		var skip []string
		for owner, u := range usage {
			q := o.cfg.Quotas.For(owner)
			if q.MaxRunning > 0 && u.Jobs >= q.MaxRunning || q.MaxGPUs > 0 && u.GPUs >= q.MaxGPUs {
				skip = append(skip, owner)
			}
		}
		sort.Strings(skip)
		now := o.now()
		ready, err := o.store.ClaimReady(ctx, o.cfg.ReplicaID, now, now.Add(o.cfg.LeaseTTL), claimBatch, skip)
		if err != nil {
			if ctx.Err() == nil {
				o.log.Error("scheduler: claim ready jobs", "err", err)
			}
			return
		}
		if len(ready) == 0 {
			return
		}
		reserved = true
		placed := o.placeBatch(ctx, ready, slots, usage)
		if len(ready) < claimBatch || placed < len(ready) {
			return // the queue is drained, or capacity ran out
		}
	}
}

// placeBatch places the reserved jobs in fair-share order and returns how
// many it placed; usage and the slots' capacity follow the placements.
func (o *Orchestrator) placeBatch(ctx context.Context, ready []*Job, slots []*slot, usage map[string]Usage) int {
	anyUp := anyOK(slots, func(s *slot) bool { return s.ok })
	var due []*Job
	for _, j := range ready {
		if len(j.DependsOn) > 0 {
			ok, err := o.dependenciesDone(ctx, j)
			if err != nil || !ok {
				continue
			}
		}
		due = append(due, j)
	}
	q := newFairQueue(due)
	type assignment struct {
		j *Job
		b *backends.Backend
	}
	var plan []assignment
	for {
		if ctx.Err() != nil || !anyOK(slots, func(s *slot) bool { return s.ok && s.cap.FreeSlots != 0 }) {
			break
		}
		j := q.next(func(owner string) int { return usage[owner].Jobs })
		if j == nil {
			break
		}
		quota := o.cfg.Quotas.For(j.Owner)
		u := usage[j.Owner]
		if quota.MaxRunning > 0 && u.Jobs >= quota.MaxRunning {
			q.drop(j.Owner) // the owner's other jobs wait too
			continue
		}
		if quota.MaxGPUs > 0 && u.GPUs+j.GPUs > quota.MaxGPUs {
			continue
		}
		task := o.task(j, j.Attempts+1)
		s, fits := pick(slots, task)
		if s == nil {
			if !fits && anyUp {
				o.fail(ctx, j, "no configured backend can run this job any more (capabilities changed)", false)
			}
			continue
		}
		plan = append(plan, assignment{j, s.b})
		u.Jobs++
		u.GPUs += j.GPUs
		usage[j.Owner] = u
		s.cap.FreeGPUs -= j.GPUs
		if s.cap.FreeSlots > 0 {
			s.cap.FreeSlots--
		}
	}
	// The decisions are made in order above; the store writes and backend
	// submissions run concurrently, so one slow round trip does not hold
	// up the rest.
	var placed atomic.Int64
	o.parallel(len(plan), func(i int) {
		a := plan[i]
		ok, err := o.place(ctx, a.j, a.b)
		if err != nil {
			if !errors.Is(err, ErrConflict) && !errors.Is(err, backends.ErrNoCapacity) {
				o.log.Warn("scheduler: place job", "job", a.j.ID, "backend", a.b.Name(), "err", err)
			}
			return
		}
		if ok {
			placed.Add(1)
		}
	})
	return int(placed.Load())
}

// parallel runs f(0) … f(n-1) on up to Config.Workers goroutines and waits
// for them.
func (o *Orchestrator) parallel(n int, f func(i int)) {
	w := min(o.cfg.Workers, n)
	if w <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// pick chooses the backend for t: among those whose capabilities fit and
// that have room now, the one with the most free GPUs for a GPU task, and
// for a CPU task a backend without GPUs first, then the most free slots.
// fits reports whether any available backend could run t at all.
func pick(slots []*slot, t backends.Task) (best *slot, fits bool) {
	score := func(s *slot) float64 {
		if t.GPUs > 0 {
			return float64(s.cap.FreeGPUs)
		}
		free := float64(s.cap.FreeSlots)
		if free < 0 {
			free = math.MaxInt32
		}
		if s.cap.TotalGPUs == 0 {
			free += math.MaxInt32
		}
		return free
	}
	for _, s := range slots {
		if !s.ok || s.caps.Fits(t) != nil {
			continue
		}
		fits = true
		if s.cap.FreeSlots == 0 || s.cap.FreeGPUs < t.GPUs {
			continue
		}
		if best == nil || score(s) > score(best) {
			best = s
		}
	}
	return best, fits
}

// fairQueue hands out ready jobs by priority, then fair share between
// owners, then age.
type fairQueue struct {
	levels []int                     // priorities, highest first
	byPrio map[int]map[string][]*Job // priority -> owner -> jobs, oldest first
}

func newFairQueue(ready []*Job) *fairQueue {
	sort.SliceStable(ready, func(a, b int) bool {
		if !ready[a].CreatedAt.Equal(ready[b].CreatedAt) {
			return ready[a].CreatedAt.Before(ready[b].CreatedAt)
		}
		return ready[a].ID < ready[b].ID
	})
	q := &fairQueue{byPrio: map[int]map[string][]*Job{}}
	for _, j := range ready {
		m := q.byPrio[j.Priority]
		if m == nil {
			m = map[string][]*Job{}
			q.byPrio[j.Priority] = m
			q.levels = append(q.levels, j.Priority)
		}
		m[j.Owner] = append(m[j.Owner], j)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(q.levels)))
	return q
}

// next pops the next job: from the highest priority with jobs left, the
// owner with the least running (ties: the oldest waiting job).
func (q *fairQueue) next(running func(owner string) int) *Job {
	for len(q.levels) > 0 {
		m := q.byPrio[q.levels[0]]
		var (
			best  string
			bestN int
		)
		for owner, js := range m {
			n := running(owner)
			if best == "" || n < bestN || n == bestN && older(js[0], m[best][0]) {
				best, bestN = owner, n
			}
		}
		if best == "" {
			q.levels = q.levels[1:]
			continue
		}
		j := m[best][0]
		if len(m[best]) == 1 {
			delete(m, best)
		} else {
			m[best] = m[best][1:]
		}
		return j
	}
	return nil
}

// drop removes every remaining job of owner from this round.
func (q *fairQueue) drop(owner string) {
	for _, m := range q.byPrio {
		delete(m, owner)
	}
}

func older(a, b *Job) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

func anyOK[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}

func (o *Orchestrator) dependenciesDone(ctx context.Context, j *Job) (bool, error) {
	for _, id := range j.DependsOn {
		d, err := o.store.GetJob(ctx, id)
		if errors.Is(err, ErrNotFound) {
			o.fail(ctx, j, fmt.Sprintf("dependency %s does not exist", id), false)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		switch d.State {
		case StateCompleted:
			continue
		case StateFailed, StateCancelled:
			o.fail(ctx, j, fmt.Sprintf("dependency %s ended %s", id, d.State), false)
			return false, nil
		default:
			return false, nil
		}
	}
	return true, nil
}

// TaskID is the deterministic backend task id of a job's attempt.
func TaskID(jobID string, attempt int) string { return fmt.Sprintf("%s-%d", jobID, attempt) }

func (o *Orchestrator) task(j *Job, attempt int) backends.Task {
	return backends.Task{
		ID:        TaskID(j.ID, attempt),
		Agent:     j.Agent,
		DatasetID: j.DatasetID,
		GPUs:      j.GPUs,
		MemoryMB:  j.MemoryMB,
		WallTime:  j.WallTime,
		Params:    j.Params,
		Labels:    map[string]string{"job_id": j.ID, "owner": j.Owner, "correlation_id": j.CorrelationID},
	}
}

// place claims j for this replica and a new attempt on b, then submits the
// task. placed is false when the job was not placed but nothing is wrong
// (another replica claimed it first, or it failed for good).
func (o *Orchestrator) place(ctx context.Context, j *Job, b *backends.Backend) (placed bool, err error) {
	now := o.now()
	n := j.Clone()
	n.Backend = b.Name()
	n.ExternalID, n.HandleData = "", nil
	n.Attempts++
	n.NextAttemptAt = time.Time{}
	n.LeaseHolder = o.cfg.ReplicaID
	n.AttemptLog = append(n.AttemptLog, Attempt{Number: n.Attempts, TaskID: TaskID(j.ID, n.Attempts), Backend: b.Name(), Replica: o.cfg.ReplicaID, ClaimedAt: now})
	claimed, err := o.save(ctx, j, n)
	if err != nil {
		return false, err // ErrConflict: another replica (or a cancel) was first
	}
	return o.submitClaimed(ctx, claimed, b)
}

// submitClaimed submits the task of a claimed attempt and records its
// handle. Submitting the same attempt twice is safe on backends that
// de-duplicate by task id.
func (o *Orchestrator) submitClaimed(ctx context.Context, j *Job, b *backends.Backend) (bool, error) {
	h, err := b.Submit(ctx, o.task(j, j.Attempts))
	if err != nil {
		if errors.Is(err, backends.ErrInvalidTask) {
			o.fail(ctx, j, "backend "+b.Name()+" rejected the task: "+err.Error(), false)
			return false, nil
		}
		o.unclaim(ctx, j, err)
		return false, err
	}
	n := j.Clone()
	n.ExternalID = h.ExternalID
	n.HandleData = h.Data
	if a := n.openAttempt(); a != nil {
		a.ExternalID = h.ExternalID
	}
	if _, err := o.save(ctx, j, n); err != nil {
		// The job changed under us. If it was cancelled meanwhile, nobody
		// else can stop the task we just started; if another replica took
		// it over, that replica resubmits the same task id and follows it.
		cur, gerr := o.store.GetJob(context.WithoutCancel(ctx), j.ID)
		if gerr == nil && cur.State.Terminal() {
			_ = b.Cancel(context.WithoutCancel(ctx), h)
		}
		return false, fmt.Errorf("record placement of job %s: %w", j.ID, err)
	}
	o.log.Debug("placed job", "job", j.ID, "backend", b.Name(), "external_id", h.ExternalID, "attempt", n.Attempts)
	return true, nil
}

// unclaim gives back a claim whose submission failed, so the attempt
// number is reused (the backend may have accepted the task after all; the
// same task id then finds it).
func (o *Orchestrator) unclaim(ctx context.Context, j *Job, cause error) {
	n := j.Clone()
	n.Backend, n.ExternalID, n.HandleData = "", "", nil
	n.Attempts = max(0, n.Attempts-1)
	if a := n.openAttempt(); a != nil {
		n.AttemptLog = n.AttemptLog[:len(n.AttemptLog)-1]
	}
	if _, err := o.save(context.WithoutCancel(ctx), j, n); err != nil && !errors.Is(err, ErrConflict) {
		o.log.Warn("scheduler: release claim", "job", j.ID, "cause", cause, "err", err)
	}
}

func (o *Orchestrator) monitor(ctx context.Context) {
	if err := o.monitorPass(ctx, false); err != nil && ctx.Err() == nil {
		o.log.Error("monitor: list active jobs", "err", err)
	}
}

// monitorPass follows every placed job this replica holds, and takes over
// the placed jobs whose leases expired. recovering uses the backends'
// Recover instead of Status for the jobs of this replica too (after a
// restart).
func (o *Orchestrator) monitorPass(ctx context.Context, recovering bool) error {
	jobs, err := o.store.FollowedJobs(ctx, o.cfg.ReplicaID, o.now())
	if err != nil {
		return err
	}
	o.parallel(len(jobs), func(i int) {
		if ctx.Err() == nil && jobs[i].Backend != "" {
			o.follow(ctx, jobs[i], recovering)
		}
	})
	return nil
}

// follow takes j over when its lease expired, then reconciles it with its
// backend.
func (o *Orchestrator) follow(ctx context.Context, j *Job, recovering bool) {
	reattach := recovering
	if j.LeaseHolder != o.cfg.ReplicaID {
		if o.leaseLive(j, o.now()) {
			return // another live replica follows it
		}
		prevHolder := j.LeaseHolder
		n := j.Clone()
		n.LeaseHolder = o.cfg.ReplicaID
		taken, err := o.save(ctx, j, n)
		if err != nil {
			return // someone else was faster, or the job moved
		}
		o.log.Info("took over job", "job", j.ID, "from", prevHolder, "backend", j.Backend, "external_id", j.ExternalID)
		j, reattach = taken, true
	}
	b, ok := o.backends[j.Backend]
	if !ok {
		o.fail(ctx, j, fmt.Sprintf("backend %q is not configured on replica %s; task %s cannot be followed", j.Backend, o.cfg.ReplicaID, j.ExternalID), true)
		return
	}
	if j.ExternalID == "" {
		// Claimed, but the handle was never recorded: submit the same
		// attempt again.
		if _, err := o.submitClaimed(ctx, j, b); err != nil {
			o.log.Warn("monitor: resubmit claimed attempt", "job", j.ID, "err", err)
		}
		return
	}
	var (
		st  backends.Status
		err error
	)
	if reattach {
		st, err = b.Recover(ctx, o.handle(j))
	} else {
		st, err = b.Status(ctx, o.handle(j))
	}
	if errors.Is(err, backends.ErrTaskNotFound) {
		o.fail(ctx, j, fmt.Sprintf("task %s was lost: backend %s no longer knows it", j.ExternalID, j.Backend), true)
		return
	}
	if err != nil {
		o.log.Warn("monitor: status", "job", j.ID, "backend", j.Backend, "err", err)
		return
	}
	o.apply(ctx, j, st)
}

// apply moves j according to the backend status st.
func (o *Orchestrator) apply(ctx context.Context, j *Job, st backends.Status) {
	var err error
	if st.State.Terminal() {
		o.stages.Delete(j.ID)
	}
	switch st.State {
	case backends.TaskPending:
		return
	case backends.TaskRunning:
		if j.State == StateQueued {
			r, err := o.markRunning(ctx, j, st)
			if err != nil {
				o.logCommit("mark running", j, err)
				return
			}
			j = r
		}
		if o.overWallTime(j) {
			o.timeout(ctx, j)
			return
		}
		o.progress(ctx, j, st.Progress, st.Message)
	case backends.TaskCompleted:
		if j.State == StateQueued {
			// Started and finished between two polls: RUNNING and
			// COMPLETED, both events, in one transaction.
			o.runAndComplete(ctx, j, st)
			return
		}
		_, err = o.transition(ctx, j, StateCompleted, events.JobCompleted, "completed", func(n *Job) {
			n.Progress = 100
			n.Result = st.Result
			n.Error = ""
			n.FinishedAt = endTime(st, o.now())
		})
		o.logCommit("complete", j, err)
	case backends.TaskFailed, backends.TaskTimeout:
		msg := st.Message
		if msg == "" {
			msg = "task failed"
		}
		if st.ExitCode != nil {
			msg = fmt.Sprintf("%s (exit code %d)", msg, *st.ExitCode)
		}
		if st.State == backends.TaskTimeout {
			msg = "backend wall-time limit reached: " + msg
		}
		o.fail(ctx, j, msg, st.State == backends.TaskFailed)
	case backends.TaskCancelled:
		_, err = o.transition(ctx, j, StateCancelled, events.JobCancelled, "task cancelled on backend "+j.Backend, func(n *Job) {
			n.FinishedAt = endTime(st, o.now())
		})
		o.logCommit("cancel", j, err)
	}
}

func endTime(st backends.Status, now time.Time) time.Time {
	if !st.EndedAt.IsZero() {
		return st.EndedAt.UTC()
	}
	return now
}

func (o *Orchestrator) logCommit(what string, j *Job, err error) {
	if err != nil && !errors.Is(err, ErrConflict) {
		o.log.Error("monitor: "+what, "job", j.ID, "err", err)
	}
}

func (o *Orchestrator) markRunning(ctx context.Context, j *Job, st backends.Status) (*Job, error) {
	return o.transition(ctx, j, StateRunning, events.JobRunning, "started on "+j.Backend, func(n *Job) {
		n.StartedAt = o.now()
		if !st.StartedAt.IsZero() {
			n.StartedAt = st.StartedAt.UTC()
		}
		if a := n.openAttempt(); a != nil {
			a.StartedAt = n.StartedAt
		}
	})
}

// runAndComplete stores QUEUED -> RUNNING -> COMPLETED with both events in
// one transaction.
func (o *Orchestrator) runAndComplete(ctx context.Context, j *Job, st backends.Status) {
	now := o.now()
	n := j.Clone()
	n.State = StateRunning
	n.StartedAt = now
	if !st.StartedAt.IsZero() {
		n.StartedAt = st.StartedAt.UTC()
	}
	if a := n.openAttempt(); a != nil {
		a.StartedAt = n.StartedAt
	}
	ev1, err := o.newEvent(n, events.JobRunning, StateQueued, "started on "+j.Backend)
	if err != nil {
		o.log.Error("complete: event", "job", j.ID, "err", err)
		return
	}
	n.State = StateCompleted
	n.Progress = 100
	n.Result = st.Result
	n.Error = ""
	n.FinishedAt = endTime(st, now)
	closeAttempt(n, StateCompleted, "completed", n.FinishedAt)
	ev2, err := o.newEvent(n, events.JobCompleted, StateRunning, "completed")
	if err != nil {
		o.log.Error("complete: event", "job", j.ID, "err", err)
		return
	}
	n.Version = j.Version + 1
	n.UpdatedAt = now
	o.stampLease(n)
	if err := o.store.UpdateJob(ctx, n, j.Version, []events.Event{ev1, ev2}); err != nil {
		o.logCommit("complete", j, err)
		return
	}
	kick(o.outboxKick)
}

func (o *Orchestrator) overWallTime(j *Job) bool {
	return j.State == StateRunning && j.WallTime > 0 && !j.StartedAt.IsZero() && o.now().Sub(j.StartedAt) > j.WallTime
}

func (o *Orchestrator) timeout(ctx context.Context, j *Job) {
	if b, ok := o.backends[j.Backend]; ok {
		if err := b.Cancel(ctx, o.handle(j)); err != nil && !errors.Is(err, backends.ErrTaskNotFound) {
			o.log.Warn("timeout: cancel task", "job", j.ID, "err", err)
		}
	}
	o.fail(ctx, j, fmt.Sprintf("wall-time limit of %s exceeded", j.WallTime), false)
}

// progress stores a new progress value, emitting job.progress when it
// crosses a multiple of the progress step or when note announces a stage
// (see stageChange).
func (o *Orchestrator) progress(ctx context.Context, j *Job, p float64, note string) {
	if math.IsNaN(p) {
		return
	}
	p = math.Max(0, math.Min(100, p))
	if p >= 100 {
		p = 99.9 // 100 belongs to job.completed
	}
	stage, stageKey := o.stageChange(j.ID, note)
	if p <= j.Progress && stage == "" {
		return
	}
	p = math.Max(p, j.Progress)
	step := o.cfg.ProgressStep
	crossed := math.Floor(p/step) > math.Floor(j.Progress/step)
	if !crossed && p-j.Progress < 1 && stage == "" {
		return
	}
	n := j.Clone()
	n.Progress = math.Round(p*10) / 10
	var err error
	switch {
	case stage != "":
		if _, err = o.commit(ctx, j, n, []evSpec{{t: events.JobProgress, prev: j.State, reason: note, stage: stage}}); err == nil {
			o.stages.Store(j.ID, stageKey)
		}
	case crossed:
		_, err = o.commit(ctx, j, n, []evSpec{{t: events.JobProgress, prev: j.State, reason: fmt.Sprintf("%.0f%% done", math.Floor(p/step)*step)}})
	default:
		_, err = o.save(ctx, j, n)
	}
	o.logCommit("progress", j, err)
}

// fail moves j to FAILED with reason; when retryable and attempts remain it
// then re-queues it with a backoff.
func (o *Orchestrator) fail(ctx context.Context, j *Job, reason string, retryable bool) {
	if j.State.Terminal() {
		return
	}
	now := o.now()
	retry := retryable && j.Attempts < o.cfg.Retry.MaxAttempts
	n := j.Clone()
	prev := n.State
	n.State = StateFailed
	n.Error = reason
	n.FinishedAt = now
	if err := CheckTransition(prev, StateFailed); err != nil {
		o.log.Error("fail: illegal transition", "job", j.ID, "err", err)
		return
	}
	specs := []evSpec{{t: events.JobFailed, prev: prev, reason: reason}}
	if !retry {
		_, err := o.commit(ctx, j, n, specs)
		o.logCommit("fail", j, err)
		return
	}
	// FAILED -> QUEUED in the same transaction: both events are written,
	// and the job is never left FAILED when a retry is due.
	o.randMu.Lock()
	u := o.cfg.Rand()
	o.randMu.Unlock()
	wait := o.cfg.Retry.Backoff(max(j.Attempts, 1), u)
	closeAttempt(n, StateFailed, reason, now)
	ev1, err := o.newEvent(n, events.JobFailed, prev, reason)
	if err != nil {
		o.log.Error("fail: event", "job", j.ID, "err", err)
		return
	}
	n.State = StateQueued
	n.Backend, n.ExternalID, n.HandleData = "", "", nil
	n.LeaseHolder, n.LeaseExpiresAt = "", time.Time{} // any replica may run the retry
	n.FinishedAt = time.Time{}
	n.StartedAt = time.Time{}
	n.Progress = 0
	n.NextAttemptAt = now.Add(wait)
	ev2, err := o.newEvent(n, events.JobQueued, StateFailed, fmt.Sprintf("retry %d of %d after %s", j.Attempts+1, o.cfg.Retry.MaxAttempts, wait.Round(time.Millisecond)))
	if err != nil {
		o.log.Error("fail: event", "job", j.ID, "err", err)
		return
	}
	n.Version = j.Version + 1
	n.UpdatedAt = now
	o.stampLease(n)
	if err := o.store.UpdateJob(ctx, n, j.Version, []events.Event{ev1, ev2}); err != nil {
		o.logCommit("fail+retry", j, err)
		return
	}
	kick(o.outboxKick)
}
