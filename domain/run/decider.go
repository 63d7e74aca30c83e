package run

import (
	"errors"
	"fmt"

	"github.com/logbookhq/logbook/domain"
)

// State is what the decider knows of a run, rebuilt from its events by
// Evolve. The zero value is a run with no events.
type State struct {
	Requested       bool
	InProcess       bool   // a builtin run (ModeBuiltin): no container, output at once
	ContainerID     string // set by ContainerCreated
	Created         bool
	Started         bool
	Stopped         bool
	Truncated       bool
	CancelRequested bool
	Terminal        string // the type of the terminal event, "" while running
	Removed         bool
	Redacted        bool   // OutputRedacted is recorded
	ClaimedBy       string // the executor of the last RunClaimed
	Starting        bool   // RunStarting: the command may have begun
	NextSeq         int64  // the seq the next OutputChunk must carry
}

// Finished reports whether the run has its terminal event.
func (s State) Finished() bool { return s.Terminal != "" }

// Kinds of lifecycle rejections.
var (
	// ErrRunFinished: the run already has its terminal event.
	ErrRunFinished = errors.New("run already finished")
	// ErrOutOfOrder: the event cannot happen at this point of the run.
	ErrOutOfOrder = errors.New("event out of order")
)

// LifecycleError says which event was rejected and why.
type LifecycleError struct {
	Kind   error
	Event  string
	Reason string
}

func (e *LifecycleError) Error() string { return fmt.Sprintf("%s rejected: %s", e.Event, e.Reason) }
func (e *LifecycleError) Unwrap() error { return e.Kind }

func reject(kind error, p domain.Payload, format string, args ...any) error {
	return &LifecycleError{Kind: kind, Event: p.EventType(), Reason: fmt.Sprintf(format, args...)}
}

// Decide is given the run's state and an event a producer proposes to record
// (the executor reporting a fact, or someone asking to cancel). It returns
// the events to record: the proposal itself, nothing when the proposal
// repeats what is already recorded (a second cancel request), or an error
// when the proposal would make the run's story inconsistent. It guarantees
// exactly one terminal event per run and nothing after it but the removal of
// the run's container.
func Decide(s State, proposed domain.Payload) ([]domain.Payload, error) {
	if _, ok := proposed.(RunRequested); ok {
		if s.Requested {
			return nil, reject(ErrOutOfOrder, proposed, "the run was already requested")
		}
		return []domain.Payload{proposed}, nil
	}
	if !s.Requested {
		return nil, reject(ErrOutOfOrder, proposed, "the run has no RunRequested yet")
	}
	if s.Finished() {
		if removed, ok := proposed.(ContainerRemoved); ok {
			return decideRemoved(s, removed)
		}
		if _, ok := proposed.(RunCancelRequested); ok {
			return nil, reject(ErrRunFinished, proposed, "the run already ended with %s", s.Terminal)
		}
		return nil, reject(ErrRunFinished, proposed, "the run already ended with %s; nothing but the container's removal may follow", s.Terminal)
	}
	switch proposed.(type) {
	case ContainerCreated, ContainerStarted, ContainerStopped:
		if s.InProcess {
			return nil, reject(ErrOutOfOrder, proposed, "a builtin run has no container")
		}
	}
	switch p := proposed.(type) {
	case ContainerCreated:
		if s.Created {
			return nil, reject(ErrOutOfOrder, p, "the run already has container %s", s.ContainerID)
		}
		if p.ContainerID == "" {
			return nil, reject(ErrOutOfOrder, p, "it names no container")
		}
	case ContainerStarted:
		if s.Started {
			return nil, reject(ErrOutOfOrder, p, "the command already started")
		}
	case OutputChunk:
		if !s.Started && !s.InProcess {
			return nil, reject(ErrOutOfOrder, p, "output before the command started")
		}
		if s.Truncated {
			return nil, reject(ErrOutOfOrder, p, "output after OutputTruncated")
		}
		if p.Seq != s.NextSeq {
			return nil, reject(ErrOutOfOrder, p, "seq %d where %d was next", p.Seq, s.NextSeq)
		}
		if p.Stream != Stdout && p.Stream != Stderr {
			return nil, reject(ErrOutOfOrder, p, "stream %q is neither stdout nor stderr", p.Stream)
		}
	case OutputTruncated:
		if s.Truncated {
			return nil, reject(ErrOutOfOrder, p, "output was already truncated")
		}
	case ContainerStopped:
		if !s.Started {
			return nil, reject(ErrOutOfOrder, p, "the command never started")
		}
		if s.Stopped {
			return nil, reject(ErrOutOfOrder, p, "the command already stopped")
		}
	case ContainerRemoved:
		return nil, reject(ErrOutOfOrder, p, "the container is removed only after the run's terminal event")
	case RunCancelRequested:
		if s.CancelRequested {
			return nil, nil
		}
	case RunStarting:
		if s.Starting || s.Created || s.Started {
			return nil, reject(ErrOutOfOrder, p, "the run is already starting")
		}
		if p.Executor == "" || p.Executor != s.ClaimedBy {
			return nil, reject(ErrOutOfOrder, p, "executor %q does not hold the run (%q does)", p.Executor, s.ClaimedBy)
		}
	case RunClaimed:
		if s.Starting || s.Created || s.Started {
			return nil, reject(ErrOutOfOrder, p, "the run already started on executor %q; a started run is never run again", s.ClaimedBy)
		}
		if p.Executor == "" {
			return nil, reject(ErrOutOfOrder, p, "it names no executor")
		}
		if p.Executor == s.ClaimedBy {
			return nil, nil
		}
	case OutputRedacted:
		if s.Redacted {
			return nil, reject(ErrOutOfOrder, p, "the run's redactions were already recorded")
		}
	case RunSucceeded, RunFailed, RunTimedOut, RunCancelled, RunLost:
		if s.Started && !s.Stopped {
			if _, lost := p.(RunLost); !lost {
				return nil, reject(ErrOutOfOrder, p, "the command started but its stop was not recorded")
			}
		}
	default:
		return nil, reject(ErrOutOfOrder, proposed, "it is not an event of a run")
	}
	return []domain.Payload{proposed}, nil
}

func decideRemoved(s State, p ContainerRemoved) ([]domain.Payload, error) {
	if !s.Created {
		return nil, reject(ErrOutOfOrder, p, "the run never had a container")
	}
	if s.Removed {
		return nil, nil
	}
	if p.ContainerID != s.ContainerID {
		return nil, reject(ErrOutOfOrder, p, "container %s is not the run's container %s", p.ContainerID, s.ContainerID)
	}
	return []domain.Payload{p}, nil
}

// Evolve applies one recorded event to the state. Events of other types are
// ignored, so a newer build's events never break an older reader.
func Evolve(s State, e domain.Payload) State {
	switch p := e.(type) {
	case RunRequested:
		s.Requested = true
		s.InProcess = p.Mode == ModeBuiltin
	case ContainerCreated:
		s.Created = true
		s.ContainerID = p.ContainerID
	case ContainerStarted:
		s.Started = true
	case OutputChunk:
		s.NextSeq = p.Seq + 1
	case OutputTruncated:
		s.Truncated = true
	case ContainerStopped:
		s.Stopped = true
	case RunCancelRequested:
		s.CancelRequested = true
	case OutputRedacted:
		s.Redacted = true
	case RunClaimed:
		s.ClaimedBy = p.Executor
	case RunStarting:
		s.Starting = true
	case ContainerRemoved:
		s.Removed = true
	case RunSucceeded, RunFailed, RunTimedOut, RunCancelled, RunLost:
		if s.Terminal == "" {
			s.Terminal = e.EventType()
		}
	}
	return s
}

// Fold rebuilds a state from events in order.
func Fold(events []domain.Payload) State {
	var s State
	for _, e := range events {
		s = Evolve(s, e)
	}
	return s
}
