package docker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/docker"
	"github.com/logbookhq/logbook/adapters/docker/agentproto"
	"github.com/logbookhq/logbook/adapters/docker/dockertest"
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
	"github.com/logbookhq/logbook/executor/executortest"
	"github.com/logbookhq/logbook/internal/testenv"
)

// newSingleUseRuntime is a runtime of its own owner with single-use mode;
// it is closed when the test ends.
func newSingleUseRuntime(t *testing.T, cli *client.Client, owner string, cfg docker.SingleUseConfig) *docker.Runtime {
	t.Helper()
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: owner, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Warm: docker.WarmConfig{AgentPath: dockertest.Agent(t)}, SingleUse: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return rt
}

// ownerContainers lists the containers of owner; with spareOnly, only the
// running single-use containers no run has taken yet.
func ownerContainers(t *testing.T, cli *client.Client, owner string, spareOnly bool) []container.Summary {
	t.Helper()
	args := filters.NewArgs(filters.Arg("label", docker.LabelOwner+"="+owner))
	if spareOnly {
		args.Add("label", docker.LabelSingleUse+"=true")
		args.Add("status", "running")
		args.Add("name", "logbook-spare-")
	}
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func singleUseRequest(img string, argv ...string) run.RunRequested {
	return run.RunRequested{RequestID: "single", Command: "hello", Image: img, Argv: argv, Mode: run.ModeSingleUse, User: &run.DefaultUser, Limits: testLimits}
}

func createdContainer(ps []domain.Payload) string {
	for _, p := range ps {
		if c, ok := p.(run.ContainerCreated); ok {
			return c.ContainerID
		}
	}
	return ""
}

func gone(cli *client.Client, id string) bool {
	_, err := cli.ContainerInspect(context.Background(), id)
	return cerrdefs.IsNotFound(err)
}

func TestDockerSingleUseRunsEachCommandInAContainerOfItsOwn(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	rt := newSingleUseRuntime(t, cli, owner, docker.SingleUseConfig{})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	execute := func(argv ...string) ([]domain.Payload, string) {
		t.Helper()
		id := runID(t)
		if err := e.Execute(runbus.RunRequest{RunID: id, Request: singleUseRequest(img, argv...)}); err != nil {
			t.Fatal(err)
		}
		events := store.Payloads(run.Stream(id))
		if _, ok := executortest.Terminal(t, events).(run.RunSucceeded); !ok {
			t.Fatalf("events %s, want RunSucceeded", executortest.Types(events))
		}
		return events, id
	}
	// Given a run that leaves a file where the next run could see it,
	first, _ := execute("sh", "-c", `touch /tmp/left-by-the-first-run; echo "$(id -u):$(id -g)"`)
	// when the next run looks for it,
	second, secondID := execute("sh", "-c", `test -e /tmp/left-by-the-first-run && echo seen || echo unseen`)
	// then it runs in another container, which never saw the file, each
	// run as its user, and both containers are removed after their runs.
	if got := string(executortest.Output(first, run.Stdout)); got != "65534:65534\n" {
		t.Errorf("the first run printed %q, want it run as nobody", got)
	}
	if got := string(executortest.Output(second, run.Stdout)); got != "unseen\n" {
		t.Errorf("the second run printed %q: it saw the first run's file", got)
	}
	a, b := createdContainer(first), createdContainer(second)
	if a == "" || b == "" || a == b {
		t.Fatalf("containers %q and %q, want two", a, b)
	}
	if started := warmStarted(second); started.ContainerID != b || started.Warm {
		t.Errorf("ContainerStarted = %+v, want the run's own container, not a warm one", started)
	}
	testenv.Eventually(t, "both runs' containers to be removed, and the removal recorded", func() bool {
		return gone(cli, a) && gone(cli, b) && strings.HasSuffix(executortest.Types(store.Payloads(run.Stream(secondID))), "RunSucceeded ContainerRemoved")
	})
	// And the pool refills to its target: spares wait for the next run.
	// The target is 1, or 2 when the second run came before the first
	// spare was up (a run that waits raises it).
	testenv.Eventually(t, "the pool's spare containers to be started", func() bool {
		pool := poolOf(rt, img)
		return pool.Target >= 1 && pool.Spare == pool.Target && len(ownerContainers(t, cli, owner, true)) == pool.Target
	})
	// Each spare's agent read the command the pool's runs exec ahead of
	// its run (agentproto.PrimeArg).
	for _, spare := range ownerContainers(t, cli, owner, true) {
		info, err := cli.ContainerInspect(context.Background(), spare.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(info.Config.Entrypoint, agentproto.PrimeArg+"sh") {
			t.Errorf("spare %.12s runs %q, want its agent to read sh ahead", spare.ID, info.Config.Entrypoint)
		}
	}
}

// takenSink tells which container a single-use run took, and can refuse
// to record it.
type takenSink struct {
	captureSink
	taken  chan string
	refuse error
}

func newTakenSink(refuse error) *takenSink {
	return &takenSink{taken: make(chan string, 1), refuse: refuse}
}

func (s *takenSink) ContainerTaken(id, _ string) error {
	s.taken <- id
	return s.refuse
}

func TestDockerSingleUseContainerIsHardenedAndRecordedBeforeItsCommand(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	rt := newSingleUseRuntime(t, cli, owner, docker.SingleUseConfig{})
	limits := run.Limits{TimeoutMS: 60_000}.Or(testLimits)
	id := runID(t)
	spec := executor.Spec{RunID: id, RequestID: "req-1", Image: img, Argv: []string{"sleep", "60"}, Limits: limits, User: &run.DefaultUser,
		Mode: run.ModeSingleUse, KillGrace: 500 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ran struct {
		out executor.Outcome
		err error
	}
	done := make(chan ran, 1)
	sink := newTakenSink(nil)
	go func() {
		out, err := rt.Run(ctx, spec, sink)
		done <- ran{out, err}
	}()
	info, err := cli.ContainerInspect(context.Background(), <-sink.taken)
	if err != nil {
		t.Fatal(err)
	}
	checkHardened(t, info, limits)
	added := make([]string, len(info.HostConfig.CapAdd))
	for i, c := range info.HostConfig.CapAdd {
		added[i] = strings.TrimPrefix(c, "CAP_")
	}
	slices.Sort(added)
	if info.Config.User != "0:0" || strings.Join(added, ",") != "KILL,SETGID,SETUID" {
		t.Errorf("user %q, caps +%v: want the agent root with only SETUID, SETGID and KILL", info.Config.User, info.HostConfig.CapAdd)
	}
	if l := info.Config.Labels; l[docker.LabelOwner] != owner || l[docker.LabelSingleUse] != "true" || l[docker.LabelPool] != img {
		t.Errorf("labels %v, want the owner's single-use pool of %s", l, img)
	}
	cancel()
	r := <-done
	if r.err != nil || !r.out.Stopped || r.out.ContainerID != info.ID {
		t.Fatalf("outcome %+v, %v: want the command stopped in container %.12s", r.out, r.err, info.ID)
	}
	if err := r.out.Release(context.Background()); err != nil || !gone(cli, info.ID) {
		t.Fatalf("release: %v; the container is still there: %v", err, !gone(cli, info.ID))
	}

	// A container whose taking could not be recorded runs nothing, and
	// goes: the append may have landed, and no other run may take it.
	refused := newTakenSink(errors.New("the store is down"))
	other := spec
	other.RunID, other.Argv = runID(t), []string{"echo", "ran"}
	out, err := rt.Run(context.Background(), other, refused)
	if !errors.Is(err, executor.ErrUnavailable) || out.Started || refused.started || refused.stdout.Len() > 0 {
		t.Fatalf("the run whose container was not recorded: %+v, %v (started %v, printed %q); want ErrUnavailable and nothing run", out, err, refused.started, refused.stdout.String())
	}
	takenID := <-refused.taken
	testenv.Eventually(t, "the container whose taking was not recorded to be removed", func() bool { return gone(cli, takenID) })

	// As in warm mode, the agent's uid is not the command's.
	root := spec
	root.RunID, root.User = runID(t), &run.User{}
	if _, err := rt.Run(context.Background(), root, &captureSink{}); !errors.Is(err, executor.ErrInvalidSpec) || !strings.Contains(err.Error(), "single-use command cannot run as uid 0") {
		t.Errorf("a run as root: %v, want it refused", err)
	}
}

// fakeClock is the clock spares age by.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func poolOf(rt *docker.Runtime, img string) docker.SingleUsePoolStatus {
	for _, p := range rt.SingleUseStatus() {
		if p.Image == img {
			return p
		}
	}
	return docker.SingleUsePoolStatus{Image: img}
}

func TestDockerSingleUsePoolGrowsWithDemandAndShrinksWhenIdle(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	clock := &fakeClock{now: time.Now()}
	rt := newSingleUseRuntime(t, cli, owner, docker.SingleUseConfig{MaxSpare: 3, IdleExpiry: time.Minute, Now: clock.Now})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	execute := func() error {
		id := runID(t)
		if err := e.Execute(runbus.RunRequest{RunID: id, Request: singleUseRequest(img, "echo", "hi")}); err != nil {
			return err
		}
		if got := string(executortest.Output(store.Payloads(run.Stream(id)), run.Stdout)); got != "hi\n" {
			return errors.New("the run printed " + got)
		}
		return nil
	}
	// Given a pool whose first run waited for its container, and which
	// keeps one spare since,
	if err := execute(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "one spare", func() bool { p := poolOf(rt, img); return p.Target == 1 && p.Spare == 1 })
	// when five runs come at once,
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() { errs <- execute() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// then those that found no spare raised the pool's target, up to its
	// maximum, and the pool fills to it,
	if p := poolOf(rt, img); p.Target < 2 || p.Target > 3 {
		t.Fatalf("pool %+v, want its target raised by the runs that waited, to at most 3", p)
	}
	testenv.Eventually(t, "the pool to fill to its target", func() bool {
		p := poolOf(rt, img)
		return p.Spare == p.Target && len(ownerContainers(t, cli, owner, true)) == p.Target
	})
	// and once its spares have waited past the idle expiry, it lets them go.
	clock.Advance(time.Minute)
	rt.WakeSingleUseRefill()
	testenv.Eventually(t, "the idle spares to be removed", func() bool {
		return poolOf(rt, img).Target == 0 && len(ownerContainers(t, cli, owner, false)) == 0
	})
}

func TestDockerSingleUseHoldsItsRefillWhileItsRunsAreInProgress(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	clock := &fakeClock{now: time.Now()}
	rt := newSingleUseRuntime(t, cli, owner, docker.SingleUseConfig{MaxSpare: 2, IdleExpiry: time.Hour, RefillHold: time.Second, Now: clock.Now})
	e, store := executortest.NewExecutor(t, rt, executor.Config{KillGrace: 500 * time.Millisecond})
	execute := func(id string, argv ...string) error {
		return e.Execute(runbus.RunRequest{RunID: id, Request: singleUseRequest(img, argv...)})
	}
	// Given a pool that keeps one spare,
	if err := execute(runID(t), "echo", "hi"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "one spare", func() bool { p := poolOf(rt, img); return p.Target == 1 && p.Spare == 1 })

	// when a run takes the spare and goes on,
	long := runID(t)
	ended := make(chan error, 1)
	go func() { ended <- execute(long, "sleep", "60") }()
	testenv.Eventually(t, "the run to hold its container", func() bool { return poolOf(rt, img).Running == 1 })
	// then its replacement is not started while the hold lasts,
	rt.TendSingleUse()
	if p := poolOf(rt, img); p.Starting != 0 || p.Spare != 0 || p.Running != 1 {
		t.Fatalf("pool %+v, want the replacement held back while the run goes on", p)
	}
	// and once the hold is up it is, though the run still goes on.
	clock.Advance(time.Second)
	rt.TendSingleUse()
	testenv.Eventually(t, "the replacement to start", func() bool { p := poolOf(rt, img); return p.Spare == 1 && p.Running == 1 })
	e.Cancel(runbus.CancelRequest{RunID: long, Reason: "test over"})
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	if _, ok := executortest.Terminal(t, store.Payloads(run.Stream(long))).(run.RunCancelled); !ok {
		t.Fatalf("the long run ended %s, want cancelled", executortest.Types(store.Payloads(run.Stream(long))))
	}

	// Given the pool's spare again, when a short run takes it and ends,
	// then the replacement starts at its end, with the clock (and so the
	// hold's time) standing still.
	if err := execute(runID(t), "echo", "again"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the replacement to start after the run", func() bool { p := poolOf(rt, img); return p.Spare == 1 && p.Running == 0 })
}

func TestDockerSingleUseLeavesNoContainerAfterClose(t *testing.T) {
	t.Parallel()
	for _, spareReady := range []bool{true, false} {
		name := "with a spare waiting"
		if !spareReady {
			name = "while the spare starts"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			closeLeavesNothing(t, spareReady)
		})
	}
}

func closeLeavesNothing(t *testing.T, spareReady bool) {
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	rt, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: owner, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Warm: docker.WarmConfig{AgentPath: dockertest.Agent(t)}})
	if err != nil {
		t.Fatal(err)
	}
	// Given a run done but not yet released, whose pool starts a spare
	// after it (and, in one case, has it ready),
	spec := executor.Spec{RunID: runID(t), Image: img, Argv: []string{"true"}, Limits: testLimits, User: &run.DefaultUser, Mode: run.ModeSingleUse}
	out, err := rt.Run(context.Background(), spec, &captureSink{})
	if err != nil {
		t.Fatal(err)
	}
	if spareReady {
		testenv.Eventually(t, "a spare", func() bool { return len(ownerContainers(t, cli, owner, true)) == 1 })
	}
	// when the runtime closes,
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// then none of its containers is left, and a late release is no error.
	if left := ownerContainers(t, cli, owner, false); len(left) != 0 {
		t.Fatalf("%d containers left after Close", len(left))
	}
	if err := out.Release(context.Background()); err != nil {
		t.Fatalf("releasing after Close: %v", err)
	}
	if _, err := rt.Run(context.Background(), spec, &captureSink{}); !errors.Is(err, executor.ErrUnavailable) {
		t.Fatalf("a run after Close: %v, want ErrUnavailable", err)
	}
}

// A process that dies mid-run leaves its single-use containers behind:
// the run's, named after it, and the spares. Reconcile, on the next start,
// records the run lost and removes them all.
func TestDockerSingleUseRunACrashLeftIsRecordedLostWhenGivenAgain(t *testing.T) {
	t.Parallel()
	cli := dockertest.Engine(t)
	img := dockertest.Image(t, cli)
	owner := runID(t)
	// Given a single-use run whose command was running when its process
	// died,
	crashed := newSingleUseRuntime(t, cli, owner, docker.SingleUseConfig{})
	id := runID(t)
	request := run.RunRequested{RequestID: "old", Image: img, Argv: []string{"sleep", "60"}, Limits: testLimits, User: &run.DefaultUser, Mode: run.ModeSingleUse}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	sink := newTakenSink(nil)
	go func() {
		defer close(ran)
		_, _ = crashed.Run(ctx, executor.Spec{RunID: id, RequestID: "old", Image: img, Argv: request.Argv, Limits: testLimits,
			User: &run.DefaultUser, Mode: run.ModeSingleUse, KillGrace: time.Second}, sink)
	}()
	defer func() { cancel(); <-ran }()
	taken := <-sink.taken
	testenv.Eventually(t, "the run's command and a spare", func() bool {
		info, err := cli.ContainerInspect(context.Background(), taken)
		p := poolOf(crashed, img)
		return err == nil && info.State.Running && p.Spare == 1 && p.Starting == 0
	})
	store := executortest.NewMemStore()
	for i, p := range []domain.Payload{request, run.ContainerCreated{ContainerID: taken}, run.ContainerStarted{ContainerID: taken}} {
		if _, err := store.Append(context.Background(), run.Stream(id), eventstore.Exact(int64(i)-1), domain.MustEncode(p, domain.Metadata{})); err != nil {
			t.Fatal(err)
		}
	}
	next, err := docker.NewRuntimeWithConfig(docker.Config{Engine: cli, Owner: owner, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close(context.Background())
	publisher := executortest.AppendingPublisher{Appender: executor.NewAppender(store)}
	// when the next process reconciles (the taken container has a
	// spare's name, so reconcile removes it without knowing its run)
	rep, err := executor.Reconcile(context.Background(), executor.ReconcileConfig{Runtime: next, Store: store, Publisher: publisher})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) != 0 || rep.Removed != 2 {
		t.Fatalf("report %+v, want the taken container and the spare removed", rep)
	}
	if left := ownerContainers(t, cli, owner, false); len(left) != 0 {
		t.Fatalf("%d containers left after reconcile", len(left))
	}
	// and the run is given to its executor again,
	e, err := executor.NewExecutorWithConfig(executor.Config{Runtime: next, Publisher: publisher, Store: store, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	if err := e.Execute(runbus.RunRequest{RunID: id, Request: request}); err != nil {
		t.Fatal(err)
	}
	// then it is recorded lost, with its container's removal, and its
	// command is not run again.
	events := store.Payloads(run.Stream(id))
	if got := executortest.Types(events); got != "RunRequested ContainerCreated ContainerStarted RunLost ContainerRemoved" {
		t.Fatalf("events %s", got)
	}
	if lost := events[3].(run.RunLost); !strings.Contains(lost.Reason, taken[:12]) {
		t.Errorf("RunLost %q does not name the container", lost.Reason)
	}
	if left := ownerContainers(t, cli, owner, false); len(left) != 0 {
		t.Fatalf("%d containers after the run was given again, want none: it was not run again", len(left))
	}
}
