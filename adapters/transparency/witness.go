package transparency

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/note"

	"github.com/logbookhq/logbook/domain/auditlog"
)

// Witness serves C2SP tlog-witness: POST /add-checkpoint. It cosigns a
// checkpoint of a log it knows only when it extends, by a consistency
// proof, the last one it cosigned for that log, and keeps that one in its
// state before it answers.
type Witness struct {
	logs   map[string]auditlog.WitnessedLog // by origin
	signer note.Signer
	state  *StateFile
	log    zerolog.Logger
	mu     sync.Mutex // one decision at a time: the state is compare-and-set
}

// NewWitness makes a witness for logs, given as note verifier strings
// whose names are the logs' origins.
func NewWitness(signer note.Signer, logKeys []string, state *StateFile, log zerolog.Logger) (*Witness, error) {
	w := &Witness{logs: map[string]auditlog.WitnessedLog{}, signer: signer, state: state, log: log}
	for _, k := range logKeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("log key %q is not a note verifier key (name+hash+key): %w", k, err)
		}
		if _, dup := w.logs[v.Name()]; dup {
			return nil, fmt.Errorf("log %s is given twice", v.Name())
		}
		w.logs[v.Name()] = auditlog.WitnessedLog{Origin: v.Name(), Verifier: v}
	}
	if len(w.logs) == 0 {
		return nil, fmt.Errorf("the witness knows no log: give at least one log key")
	}
	return w, nil
}

// ServeHTTP implements http.Handler.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, auditlog.MaxAddCheckpointBytes+1))
	if err != nil {
		http.Error(rw, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := auditlog.ParseAddCheckpoint(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	lines, refusal, err := w.addCheckpoint(req)
	switch {
	case err != nil:
		w.log.Error().Err(err).Msg("witness: could not cosign")
		http.Error(rw, "the witness could not save its state", http.StatusServiceUnavailable)
	case refusal != nil:
		w.log.Warn().Int("status", refusal.Status).Str("origin", auditlog.CheckpointOrigin(req.Checkpoint)).Int64("old_size", req.OldSize).Str("reason", refusal.Reason).Msg("witness: refused a checkpoint")
		if refusal.Status == http.StatusConflict {
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", refusal.KnownSize)
			return
		}
		http.Error(rw, refusal.Reason, refusal.Status)
	default:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(rw, strings.Join(lines, "")) //nolint:errcheck // the client sees a short body
	}
}

// addCheckpoint decides, cosigns and saves the state, under the lock.
func (w *Witness) addCheckpoint(req auditlog.AddCheckpoint) ([]string, *auditlog.WitnessRefusal, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var l *auditlog.WitnessedLog
	if found, ok := w.logs[auditlog.CheckpointOrigin(req.Checkpoint)]; ok {
		l = &found
	}
	var known *auditlog.WitnessState
	if l != nil {
		known = w.state.Get(*l)
	}
	c, next, refusal := auditlog.DecideCosign(l, known, req)
	if refusal != nil {
		return nil, refusal, nil
	}
	text := req.Checkpoint[:bytes.LastIndex(req.Checkpoint, []byte("\n\n"))+1]
	signed, err := note.Sign(&note.Note{Text: string(text)}, w.signer)
	if err != nil {
		return nil, nil, err
	}
	if err := w.state.Put(*l, next); err != nil {
		return nil, nil, err
	}
	w.log.Info().Str("origin", c.Origin).Int64("size", c.Size).Int64("old_size", req.OldSize).Msg("witness: cosigned")
	return auditlog.SignatureLines(signed), nil, nil
}
