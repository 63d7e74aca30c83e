package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// appendDecision records a decision's runs and request events in one
// atomic append. When part of it is stored already (an earlier build
// recorded a decision one stream at a time and stopped half way), the
// parts are recorded one by one instead, each a no-op when stored, and a
// run requested already is left as it is.
func (d *Dispatcher) appendDecision(ctx context.Context, parts []eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	results, err := d.cfg.Store.AppendMulti(ctx, parts...)
	if !errors.Is(err, eventstore.ErrDuplicateEvent) {
		return results, err
	}
	results = make([]eventstore.AppendResult, len(parts))
	for i, p := range parts {
		res, err := d.cfg.Store.Append(ctx, p.Stream, p.Expected, p.Events...)
		if err != nil && !(strings.HasPrefix(p.Stream, run.StreamPrefix) && errors.Is(err, eventstore.ErrWrongExpectedVersion)) {
			return nil, fmt.Errorf("append the decision to %s: %w", p.Stream, err)
		}
		results[i] = res
	}
	return results, nil
}
