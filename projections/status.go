package projections

import (
	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/run"
)

// TerminalRunStatus names a run's terminal event as the history view does
// (RunSucceeded, RunFailed, ...), and is "" for any other payload.
func TerminalRunStatus(p domain.Payload) string {
	switch p.(type) {
	case run.RunSucceeded:
		return RunSucceeded
	case run.RunFailed:
		return RunFailed
	case run.RunTimedOut:
		return RunTimedOut
	case run.RunCancelled:
		return RunCancelled
	case run.RunLost:
		return RunLost
	}
	return ""
}
