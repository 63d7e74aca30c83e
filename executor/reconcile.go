package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// Leftover is something a runtime still holds from before the executor
// started: a run's container, or a warm pool container (RunID "").
type Leftover struct {
	RunID       string
	RequestID   string
	ContainerID string
	State       string // the runtime's word: "running", "exited", ...
	ExitCode    int
	// Unclaimed: nothing says whose the container is (it predates owners
	// per store), so it is settled only when its run is in this store.
	Unclaimed bool
}

// LeftoverRuntime is implemented by runtimes whose work can outlive the
// executor process (docker). The process runtime's children die with it.
type LeftoverRuntime interface {
	// Leftovers lists what this runtime's owner left behind.
	Leftovers(ctx context.Context) ([]Leftover, error)
	// Discard stops and removes a leftover.
	Discard(ctx context.Context, l Leftover) error
}

// ReconcileConfig configures Reconcile.
type ReconcileConfig struct {
	Runtime     LeftoverRuntime   // required
	Store       eventstore.Store  // required
	Publisher   message.Publisher // required: run events go to the Appender
	EventsTopic string            // TopicRunEvents
	Actor       string            // "executor"
	Logger      zerolog.Logger
}

// ReconcileReport says what Reconcile did.
type ReconcileReport struct {
	Lost      []string // run ids recorded RunLost
	Removed   int      // containers removed
	Unmatched int      // leftovers whose run has no stream (removed too)
	Foreign   int      // unclaimed leftovers this store does not know, left alone
}

// Reconcile settles what a previous executor left behind, before this one
// takes work: a run whose container is still around but whose stream has no
// terminal event is recorded RunLost (its output after the crash is not
// recoverable byte-exactly, so Logbook says so rather than guess); every
// leftover container is then removed and, where the stream names it,
// ContainerRemoved is recorded. An unclaimed leftover is settled only when
// its run is in the store: anything else may be another store's.
func Reconcile(ctx context.Context, cfg ReconcileConfig) (ReconcileReport, error) {
	var rep ReconcileReport
	if cfg.Runtime == nil || cfg.Store == nil || cfg.Publisher == nil {
		return rep, errors.New("reconcile config: Runtime, Store and Publisher are required")
	}
	if cfg.EventsTopic == "" {
		cfg.EventsTopic = TopicRunEvents
	}
	if cfg.Actor == "" {
		cfg.Actor = "executor"
	}
	leftovers, err := cfg.Runtime.Leftovers(ctx)
	if err != nil {
		return rep, fmt.Errorf("reconcile: listing leftovers: %w", err)
	}
	var errs []error
	for _, l := range leftovers {
		log := cfg.Logger.With().Str("run_id", l.RunID).Str("request_id", l.RequestID).Str("container_id", l.ContainerID).Logger()
		known := l.RunID != "" && run.ValidateID(l.RunID) == nil
		if !known && l.Unclaimed {
			rep.Foreign++
			continue
		}
		if !known {
			errs = append(errs, discard(ctx, cfg, l, &rep))
			continue
		}
		past, _, err := readRun(ctx, cfg.Store, l.RunID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		state := run.Fold(past)
		if !state.Requested && l.Unclaimed {
			log.Debug().Msg("unclaimed container of a run this store does not know; left alone")
			rep.Foreign++
			continue
		}
		if !state.Requested {
			log.Warn().Msg("leftover container of a run with no stream; removing it")
			rep.Unmatched++
			errs = append(errs, discard(ctx, cfg, l, &rep))
			continue
		}
		md := domain.Metadata{CorrelationID: l.RequestID, Actor: cfg.Actor}
		rec := newRecorder(ctx, cfg.Publisher, cfg.EventsTopic, l.RunID, md, past)
		if !state.Finished() {
			reason := fmt.Sprintf("the executor stopped while the run's container %.12s was %s", l.ContainerID, l.State)
			if l.State == "exited" {
				reason += fmt.Sprintf(" (exit code %d, output after the stop not recorded)", l.ExitCode)
			}
			if err := rec.record(run.RunLost{Reason: reason}); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Lost = append(rep.Lost, l.RunID)
			log.Warn().Str("reason", reason).Msg("run recorded lost")
		}
		if err := discard(ctx, cfg, l, &rep); err != nil {
			errs = append(errs, err)
			continue
		}
		if state.Created && !state.Removed && state.ContainerID == l.ContainerID {
			errs = append(errs, rec.record(run.ContainerRemoved{ContainerID: l.ContainerID}))
		}
	}
	return rep, errors.Join(errs...)
}

func discard(ctx context.Context, cfg ReconcileConfig, l Leftover, rep *ReconcileReport) error {
	if err := cfg.Runtime.Discard(ctx, l); err != nil {
		return fmt.Errorf("reconcile: removing %s: %w", l.ContainerID, err)
	}
	rep.Removed++
	return nil
}
