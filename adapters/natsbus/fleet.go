package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/runbus"
	"github.com/logbookhq/logbook/executor"
)

// claimRequest is what an executor sends on logbook.claim.<id>.
type claimRequest struct {
	RunID string `json:"run_id"`
	Group string `json:"group"`
	Host  string `json:"host"`
	Boot  string `json:"boot"`
}

// Link is an executor's side of the server: claims (executor.Claimer) and
// heartbeats.
type Link struct {
	conn   *Conn
	id     string
	boot   string
	host   string
	groups []string
	// Timeout bounds a claim's round trip (10s).
	Timeout time.Duration
}

// NewLink returns the link of executor id (one process: boot).
func NewLink(conn *Conn, id, boot, host string, groups []string) *Link {
	return &Link{conn: conn, id: id, boot: boot, host: host, groups: groups, Timeout: 10 * time.Second}
}

// Claim asks the server for req's run: executor.ErrClaimDone when it must
// not run, executor.ErrHeldElsewhere when another executor holds it.
func (l *Link) Claim(ctx context.Context, req runbus.RunRequest) ([]domain.Payload, error) {
	body, err := json.Marshal(claimRequest{RunID: req.RunID, Group: cmpGroup(req.Request.Group), Host: l.host, Boot: l.boot})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	msg, err := l.conn.NC.RequestWithContext(ctx, subjectClaim+l.id, body)
	if err != nil {
		return nil, fmt.Errorf("claim run %s: %w", req.RunID, err)
	}
	var reply executor.ClaimReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return nil, fmt.Errorf("claim run %s: the server's answer is not JSON: %w", req.RunID, err)
	}
	switch reply.Status {
	case executor.ClaimGranted:
		return executor.DecodeWireEvents(reply.Events)
	case executor.ClaimHeld:
		return nil, fmt.Errorf("%w: %s", executor.ErrHeldElsewhere, reply.Reason)
	case executor.ClaimDone, executor.ClaimUnknown:
		return nil, fmt.Errorf("%w: %s", executor.ErrClaimDone, reply.Reason)
	}
	return nil, fmt.Errorf("claim run %s: the server answered %q: %s", req.RunID, reply.Status, reply.Reason)
}

func cmpGroup(g string) string {
	if g == "" {
		return DefaultGroup
	}
	return g
}

// Heartbeats publishes status() every interval until ctx ends.
func (l *Link) Heartbeats(ctx context.Context, every time.Duration, status func() executor.Heartbeat) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		hb := status()
		hb.ID, hb.Boot, hb.Host, hb.Groups = l.id, l.boot, l.host, l.groups
		if b, err := json.Marshal(hb); err == nil {
			if err := l.conn.NC.Publish(subjectHeartbeat+l.id, b); err != nil {
				l.conn.log.Warn().Err(err).Msg("sending a heartbeat")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FleetService is the server's side of the executors: it answers claims
// and takes heartbeats, the executor's id read from the subject NATS
// authenticated.
type FleetService struct {
	Conn  *Conn
	Desk  *executor.ClaimDesk
	Fleet *executor.Fleet
	// Workers answer claims at once (8).
	Workers int
}

// Run serves until ctx ends.
func (s *FleetService) Run(ctx context.Context) error {
	workers := s.Workers
	if workers <= 0 {
		workers = 8
	}
	claims := make(chan *nats.Msg, 1024)
	claimSub, err := s.Conn.NC.ChanQueueSubscribe(subjectClaim+"*", "logbook-server", claims)
	if err != nil {
		return fmt.Errorf("subscribe to claims: %w", err)
	}
	defer claimSub.Unsubscribe()
	beats := make(chan *nats.Msg, 1024)
	beatSub, err := s.Conn.NC.ChanSubscribe(subjectHeartbeat+"*", beats)
	if err != nil {
		return fmt.Errorf("subscribe to heartbeats: %w", err)
	}
	defer beatSub.Unsubscribe()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-claims:
					s.answerClaim(ctx, m)
				}
			}
		}()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-beats:
			var hb executor.Heartbeat
			if err := json.Unmarshal(m.Data, &hb); err != nil {
				s.Conn.log.Warn().Err(err).Str("subject", m.Subject).Msg("a heartbeat that is not JSON")
				continue
			}
			hb.ID = strings.TrimPrefix(m.Subject, subjectHeartbeat)
			for _, g := range hb.Groups {
				if err := s.Conn.EnsureGroupOnce(ctx, g); err != nil {
					s.Conn.log.Warn().Err(err).Str("executor", hb.ID).Msg("an executor's relay group")
				}
			}
			s.Fleet.Beat(ctx, hb)
		}
	}
}

func (s *FleetService) answerClaim(ctx context.Context, m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, subjectClaim)
	var req claimRequest
	reply := executor.ClaimReply{Status: executor.ClaimUnknown}
	err := json.Unmarshal(m.Data, &req)
	if err == nil {
		reply, err = s.Desk.Claim(ctx, id, req.Boot, req.Host, req.Group, req.RunID)
	}
	if err != nil {
		s.Conn.log.Error().Err(err).Str("executor", id).Str("run_id", req.RunID).Msg("answering a claim")
		reply = executor.ClaimReply{Status: "error", Reason: "the server could not record the claim now; the run comes again"}
	}
	if reply.Status == executor.ClaimGranted || reply.Status == executor.ClaimDone {
		s.Fleet.Claimed(req.RunID)
	}
	b, _ := json.Marshal(reply)
	if err := m.Respond(b); err != nil {
		s.Conn.log.Warn().Err(err).Str("executor", id).Msg("answering a claim")
	}
}
