package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/runbus"
)

// Claimer hands an executor a run it took off the bus: the events the run's
// stream holds, ending with this executor's claim. An executor with a
// Claimer needs no store (an executor on another host).
type Claimer interface {
	Claim(ctx context.Context, req runbus.RunRequest) ([]domain.Payload, error)
}

// ErrHeldElsewhere: another live executor holds the run (a request
// delivered twice). The message goes back to the queue and is looked at
// again later.
var ErrHeldElsewhere = errors.New("the run is held by another executor")

// ErrClaimDone: the run ended or started before, or is unknown; it is
// never run (again), and its message is acknowledged.
var ErrClaimDone = errors.New("the run is not to be run")

// ErrNotYourRun is the kind of a run event from an executor that does not
// hold the run: it is refused (poison), never appended.
var ErrNotYourRun = fmt.Errorf("%w: the run is not this executor's", runbus.ErrBadMessage)

// Claim statuses.
const (
	ClaimGranted = "granted" // the run is yours: Events is its stream
	ClaimDone    = "done"    // the run ended or started before: never run it
	ClaimHeld    = "held"    // another live executor holds it: try later
	ClaimUnknown = "unknown" // no such run
)

// ClaimReply answers a claim.
type ClaimReply struct {
	Status string      `json:"status"`
	Reason string      `json:"reason,omitempty"`
	Events []WireEvent `json:"events,omitempty"`
}

// WireEvent is a stored event as a claim reply carries it.
type WireEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// DecodeWireEvents turns a claim reply's events back into payloads.
func DecodeWireEvents(events []WireEvent) ([]domain.Payload, error) {
	out := make([]domain.Payload, 0, len(events))
	for _, e := range events {
		p, err := domain.Decode(domain.RecordedEvent{Type: e.Type, Data: e.Data})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ClaimDesk is the server's side of claims: it records which executor holds
// each run (RunClaimed in the run's stream) and refuses run events from any
// other, so an executor can only write to runs it was given.
type ClaimDesk struct {
	store eventstore.Store
	// live reports whether an executor still sends heartbeats.
	live func(executorID string) bool
	// serves, when set, reports whether a live executor serves a relay
	// group: a run goes only to an executor of its group.
	serves func(executorID, group string) bool

	mu     sync.Mutex
	owners map[string]holder // run id → who holds it, for runs not yet ended
	// closed are runs the server ended itself (lost): no executor's event
	// is appended to them any more.
	closed map[string]bool
	// justRequested are runs whose streams the dispatcher in this process
	// just created with their RunRequested alone (JustRequested), until
	// their first claim.
	justRequested map[string]run.RunRequested
}

// maxJustRequested bounds ClaimDesk.justRequested: past it, the runs not
// claimed yet are dropped, and their claims read the stream.
const maxJustRequested = 100_000

// JustRequested tells the desk that req's run stream was just created
// holding req's RunRequested alone (runbus.RunRequest.JustRequested). The
// run's first claim takes the stream as that one event instead of reading
// it: the claim's append expects the stream exactly there, so if anything
// was appended meanwhile (the run failed in its queue, another executor
// claimed it) the append is refused, and the claim reads and looks again.
func (d *ClaimDesk) JustRequested(req runbus.RunRequest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.justRequested) >= maxJustRequested {
		clear(d.justRequested)
	}
	d.justRequested[req.RunID] = req.Request
}

// takeJustRequested is the RunRequested JustRequested left for runID, once.
func (d *ClaimDesk) takeJustRequested(runID string) (run.RunRequested, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rr, ok := d.justRequested[runID]
	delete(d.justRequested, runID)
	return rr, ok
}

// holder is an executor holding a run, and the boot (process) of that
// executor that claimed it: a run claimed by an earlier boot is not held by
// the process running now.
type holder struct {
	executor, boot string
}

// NewClaimDesk returns a desk over store.
func NewClaimDesk(store eventstore.Store, live func(executorID string) bool) *ClaimDesk {
	return &ClaimDesk{store: store, live: live, owners: map[string]holder{}, closed: map[string]bool{}, justRequested: map[string]run.RunRequested{}}
}

// Close stops every executor's events for runID, before the server
// records the run's end itself; Reopen undoes it when that fails.
func (d *ClaimDesk) Close(runID string) {
	d.mu.Lock()
	d.closed[runID] = true
	delete(d.owners, runID)
	d.mu.Unlock()
}

// ClosedAmong lists the runs of runIDs the server ended itself (Close).
func (d *ClaimDesk) ClosedAmong(runIDs []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var closed []string
	for _, r := range runIDs {
		if d.closed[r] {
			closed = append(closed, r)
		}
	}
	return closed
}

// Reopen undoes Close.
func (d *ClaimDesk) Reopen(runID string) {
	d.mu.Lock()
	delete(d.closed, runID)
	d.mu.Unlock()
}

// ServedBy makes the desk grant a run only to an executor whose heartbeats
// name the run's relay group (Fleet.Serves).
func (d *ClaimDesk) ServedBy(serves func(executorID, group string) bool) { d.serves = serves }

// Claim gives runID to executorID unless it ended, started, or another live
// executor holds it.
//
// With start, the run is also recorded RunStarting in the same append: the
// executor starts its command right after (it claims only with a free
// slot), so the log says the command may have begun before it can have,
// and the run is never given to another executor, even when this one is
// cut off before it says more; it ends RunLost instead.
func (d *ClaimDesk) Claim(ctx context.Context, executorID, boot, host, group, runID string, start bool) (ClaimReply, error) {
	if err := run.ValidateID(runID); err != nil {
		return ClaimReply{Status: ClaimUnknown, Reason: err.Error()}, nil
	}
	for attempt := 0; ; attempt++ {
		past, recorded, err := d.pastOf(ctx, runID, attempt)
		if err != nil {
			return ClaimReply{}, err
		}
		state := run.Fold(past)
		switch {
		case !state.Requested:
			return ClaimReply{Status: ClaimUnknown, Reason: "no such run"}, nil
		case state.Finished():
			return ClaimReply{Status: ClaimDone, Reason: "the run ended with " + state.Terminal}, nil
		case state.Starting || state.Created || state.Started:
			d.remember(runID, holder{executor: state.ClaimedBy})
			return ClaimReply{Status: ClaimDone, Reason: fmt.Sprintf("the run started on executor %q and is never run again", state.ClaimedBy)}, nil
		case state.ClaimedBy != "" && state.ClaimedBy != executorID && d.live != nil && d.live(state.ClaimedBy):
			return ClaimReply{Status: ClaimHeld, Reason: fmt.Sprintf("executor %q holds the run", state.ClaimedBy)}, nil
		case d.serves != nil && !d.serves(executorID, runGroup(past)):
			return ClaimReply{Status: ClaimHeld, Reason: fmt.Sprintf("executor %q has not said it serves relay group %q", executorID, runGroup(past))}, nil
		}
		var proposed []domain.Payload
		if state.ClaimedBy != executorID {
			proposed = append(proposed, run.RunClaimed{Executor: executorID, Host: host, Group: group})
		}
		if start {
			proposed = append(proposed, run.RunStarting{Executor: executorID})
		}
		if len(proposed) > 0 {
			md := domain.Metadata{CorrelationID: requestOf(past), Actor: "executor:" + executorID}
			events := make([]domain.NewEvent, len(proposed))
			for i, p := range proposed {
				if events[i], err = domain.Encode(p, md); err != nil {
					return ClaimReply{}, err
				}
			}
			_, err = d.store.Append(ctx, run.Stream(runID), eventstore.Exact(int64(len(past))-1), events...)
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < 3 {
				continue // something was appended meanwhile: look again
			}
			if err != nil {
				return ClaimReply{}, fmt.Errorf("record the claim of run %s: %w", runID, err)
			}
			for _, ev := range events {
				recorded = append(recorded, domain.RecordedEvent{Type: ev.Type, Data: ev.Data})
			}
		}
		d.remember(runID, holder{executor: executorID, boot: boot})
		reply := ClaimReply{Status: ClaimGranted, Events: make([]WireEvent, len(recorded))}
		for i, e := range recorded {
			reply.Events[i] = WireEvent{Type: e.Type, Data: e.Data}
		}
		return reply, nil
	}
}

// pastOf is runID's stream for a claim's attempt: on the first, the
// RunRequested JustRequested left, if any (the claim's append checks it);
// otherwise as read.
func (d *ClaimDesk) pastOf(ctx context.Context, runID string, attempt int) ([]domain.Payload, []domain.RecordedEvent, error) {
	if attempt == 0 {
		if rr, ok := d.takeJustRequested(runID); ok {
			data, err := json.Marshal(rr) // the bytes domain.Encode stored
			if err != nil {
				return nil, nil, err
			}
			return []domain.Payload{rr}, []domain.RecordedEvent{{Stream: run.Stream(runID), Type: rr.EventType(), Data: data}}, nil
		}
	}
	return readRun(ctx, d.store, runID)
}

// runGroup is the relay group a run was requested for.
func runGroup(past []domain.Payload) string {
	for _, p := range past {
		if r, ok := p.(run.RunRequested); ok && r.Group != "" {
			return r.Group
		}
	}
	return "default"
}

func requestOf(past []domain.Payload) string {
	for _, p := range past {
		if r, ok := p.(run.RunRequested); ok {
			return r.RequestID
		}
	}
	return ""
}

func (d *ClaimDesk) remember(runID string, h holder) {
	if h.executor == "" {
		return
	}
	d.mu.Lock()
	d.owners[runID] = h
	d.mu.Unlock()
}

// Held lists the runs the desk knows executorID holds, except those its
// boot claimed (all of them when boot is "").
func (d *ClaimDesk) Held(executorID, exceptBoot string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var runs []string
	for r, h := range d.owners {
		if h.executor == executorID && (exceptBoot == "" || h.boot != exceptBoot) {
			runs = append(runs, r)
		}
	}
	return runs
}

// Holders lists every executor the desk knows to hold a run.
func (d *ClaimDesk) Holders() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	var ids []string
	for _, h := range d.owners {
		if !seen[h.executor] {
			seen[h.executor] = true
			ids = append(ids, h.executor)
		}
	}
	return ids
}

// Forget drops a run the desk no longer needs to watch.
func (d *ClaimDesk) Forget(runID string) {
	d.mu.Lock()
	delete(d.owners, runID)
	d.mu.Unlock()
}

// Owner is the executor holding runID, from memory or the run's stream,
// and whether the run has ended (then only its container's removal may
// follow).
func (d *ClaimDesk) Owner(ctx context.Context, runID string) (owner string, finished bool, err error) {
	d.mu.Lock()
	h, ok := d.owners[runID]
	closed := d.closed[runID]
	d.mu.Unlock()
	if closed {
		return "", true, nil
	}
	if ok {
		return h.executor, false, nil
	}
	past, _, err := readRun(ctx, d.store, runID)
	if err != nil {
		return "", false, err
	}
	state := run.Fold(past)
	return state.ClaimedBy, state.Finished(), nil
}

// Guard wraps the appender's handler for events from a broker: each event
// must come from the executor that holds its run (the subject NATS
// authenticated names it, in metaExecutor). An event from any other is
// refused, and so is one whose executor the message does not name.
func (d *ClaimDesk) Guard(a *Appender, executorOf func(*message.Message) string) func(*message.Message) error {
	return func(msg *message.Message) error {
		stream, version, ev, runID, err := d.check(msg, executorOf)
		if err != nil {
			return err
		}
		if err := a.Append(msg.Context(), stream, version, ev); err != nil {
			return err
		}
		if run.IsTerminalType(ev.Type) {
			d.Forget(runID)
		}
		return nil
	}
}

// GuardRun is Guard for several events of one run, in version order from
// the first, appended in one commit: each passes Guard's checks, or none
// is appended. Any error leaves them all unappended, to be taken one by
// one by Guard (an append already made is recognised there by its event
// id).
func (d *ClaimDesk) GuardRun(a *Appender, executorOf func(*message.Message) string) func(ctx context.Context, msgs []*message.Message) error {
	return func(ctx context.Context, msgs []*message.Message) error {
		if len(msgs) == 0 {
			return nil
		}
		var (
			stream, runID string
			first         int64
			events        = make([]domain.NewEvent, 0, len(msgs))
			terminal      bool
		)
		for i, msg := range msgs {
			s, version, ev, r, err := d.check(msg, executorOf)
			if err != nil {
				return err
			}
			if i == 0 {
				stream, runID, first = s, r, version
			} else if s != stream || version != first+int64(i) {
				return fmt.Errorf("events of %s at %d and of %s at %d are not one run's in a row", stream, first+int64(i)-1, s, version)
			}
			events = append(events, ev)
			terminal = terminal || run.IsTerminalType(ev.Type)
		}
		if err := a.AppendRun(ctx, stream, first, events); err != nil {
			return err
		}
		if terminal {
			d.Forget(runID)
		}
		return nil
	}
}

// check decodes a run event and says whether its executor may append it:
// it must hold the run, and once the run ended only the container's
// removal may follow.
func (d *ClaimDesk) check(msg *message.Message, executorOf func(*message.Message) string) (stream string, version int64, ev domain.NewEvent, runID string, err error) {
	stream, version, ev, err = DecodeEventMessage(msg)
	if err != nil {
		return "", 0, ev, "", err
	}
	from := executorOf(msg)
	runID, ok := strings.CutPrefix(stream, "run-")
	if from == "" || !ok {
		return "", 0, ev, "", fmt.Errorf("%w: event %s for %s names no executor", ErrNotYourRun, ev.ID, stream)
	}
	owner, finished, err := d.Owner(msg.Context(), runID)
	if err != nil {
		return "", 0, ev, "", err
	}
	if owner != from {
		return "", 0, ev, "", fmt.Errorf("%w: executor %q sent event %s (%s) for run %s, held by %q", ErrNotYourRun, from, ev.ID, ev.Type, runID, owner)
	}
	if finished && ev.Type != "ContainerRemoved" {
		return "", 0, ev, "", fmt.Errorf("%w: executor %q sent event %s (%s) for run %s, which has ended (recorded lost while it was cut off?)", ErrNotYourRun, from, ev.ID, ev.Type, runID)
	}
	return stream, version, ev, runID, nil
}
