// Package executor runs commands: it consumes RunRequested messages, drives
// a Runtime (docker or process), coalesces output into chunks, parses the
// Cog protocol, and publishes each run's events for the Appender to store in
// the run's stream. It also holds the Appender and the Reconciler.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/logbookhq/logbook/domain/run"
)

// Runtime runs one command to completion. Adapters: adapters/docker (fresh,
// warm and single-use containers) and adapters/process (os/exec, unisolated).
type Runtime interface {
	// Run starts spec's command, streams its output into sink, and returns
	// how it ended. It enforces spec.Limits.Timeout (SIGTERM, then SIGKILL
	// after spec.KillGrace) and stops the command the same way when ctx is
	// cancelled. It returns only after every byte of output was written to
	// sink. An error means the command's outcome is unknown or it never
	// ran; its kind says which (ErrImageMissing, ErrAlreadyExists, ...).
	Run(ctx context.Context, spec Spec, sink Sink) (Outcome, error)
}

// Spec is everything a runtime needs to run one command.
type Spec struct {
	RunID     string
	RequestID string
	Image     string
	Argv      []string // the executable and its arguments
	Env       []string // KEY=VALUE, complete: runtimes add nothing but PATH where needed
	Stdin     []byte
	Limits    run.Limits // defaults already applied
	// User is who the command runs as; nil for a run recorded before
	// Logbook chose one, which runs as the image's user, as it did then.
	User      *run.User
	Mode      run.Mode
	KillGrace time.Duration // between SIGTERM and SIGKILL
}

// Sink receives what a runtime observes while running a command.
type Sink interface {
	// ContainerCreated reports the container made for this run (fresh
	// mode); it is stored before the runtime starts the container.
	ContainerCreated(containerID, imageDigest string)
	// ContainerTaken reports a container started ahead of the run and
	// taken for it (single-use mode). It is stored before the command
	// starts, and the command must not start when it returns an error: a
	// run given again after a restart finds the container in its stream
	// and is recorded lost, never run twice. A claimed run's RunStarting
	// already says as much, so there it goes with the run's next event.
	ContainerTaken(containerID, imageDigest string) error
	// ContainerStarted reports that the command began; in warm mode
	// containerID is the pooled container it was forked in.
	ContainerStarted(containerID string, warm bool)
	// Stdout and Stderr receive the command's output, byte-exact, and only
	// after ContainerStarted. Writes never fail; they block while the
	// executor records output, which throttles the command.
	Stdout() io.Writer
	Stderr() io.Writer
}

// Outcome is how a command ended.
type Outcome struct {
	Started   bool // the command began; false when it failed before
	ExitCode  int
	OOMKilled bool
	Signal    string // "SIGKILL", ... when a signal ended the command
	Duration  time.Duration
	TimedOut  bool // stopped for exceeding its timeout
	Stopped   bool // stopped because ctx was cancelled
	// ContainerID names the container to remove (fresh mode), "" if none.
	ContainerID string
	// Release removes what the run left behind (its container, its work
	// dir). The executor calls it after the terminal event, off the reply's
	// critical path, under a fresh context. Nil when there is nothing to do.
	Release func(ctx context.Context) error
}

// Kinds of runtime errors.
var (
	// ErrImageMissing: the run's image is not on the host (and pulling is
	// off or failed). The run fails with a clear reason.
	ErrImageMissing = errors.New("image missing")
	// ErrAlreadyExists: this run id already has a container or process: a
	// redelivered request. The command must not run again.
	ErrAlreadyExists = errors.New("run already exists")
	// ErrInvalidSpec: the request cannot be run as given (no argv, ...).
	ErrInvalidSpec = errors.New("invalid run spec")
	// ErrUnavailable: the runtime's backend (the Docker daemon) failed.
	ErrUnavailable = errors.New("runtime unavailable")
)

// RuntimeError is a runtime failure with its kind and a human sentence.
type RuntimeError struct {
	Kind   error
	Reason string
	Err    error // the underlying cause, if any
}

func (e *RuntimeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return e.Reason
}

func (e *RuntimeError) Unwrap() []error { return []error{e.Kind, e.Err} }

// Errorf builds a RuntimeError of kind with a formatted reason.
func Errorf(kind, cause error, format string, args ...any) error {
	return &RuntimeError{Kind: kind, Reason: fmt.Sprintf(format, args...), Err: cause}
}
