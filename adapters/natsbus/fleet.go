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

// Claim asks the server for req's run, to start it now (the server records
// RunClaimed and RunStarting): executor.ErrClaimDone when it must not run,
// executor.ErrHeldElsewhere when another executor holds it.
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
	advisories := make(chan *nats.Msg, 256)
	advisorySub, err := s.Conn.NC.ChanSubscribe(advisoryMaxDeliveries+RunsStream+".*", advisories)
	if err != nil {
		return fmt.Errorf("subscribe to max-delivery advisories: %w", err)
	}
	defer advisorySub.Unsubscribe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-advisories:
				s.poison(ctx, m)
			}
		}
	}()
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

// advisoryMaxDeliveries is the subject prefix of JetStream's advisory for
// a message that reached its consumer's MaxDeliver.
const advisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// maxDeliveriesAdvisory is the part of that advisory read here.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// poison handles a run request NATS stopped delivering: its message moves
// to the poison stream (its secrets stay sealed), leaves the work queue,
// and the run fails saying so.
func (s *FleetService) poison(ctx context.Context, m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.Stream != RunsStream {
		return
	}
	log := s.Conn.log.With().Str("consumer", adv.Consumer).Uint64("stream_seq", adv.StreamSeq).Logger()
	stream, err := s.Conn.JS.Stream(ctx, RunsStream)
	if err != nil {
		log.Error().Err(err).Msg("reading a run request past its deliveries")
		return
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		log.Error().Err(err).Msg("reading a run request past its deliveries")
		return
	}
	group := strings.TrimPrefix(raw.Subject, subjectRuns)
	poisoned := nats.NewMsg(subjectPoison + "server")
	poisoned.Data, poisoned.Header = raw.Data, raw.Header
	if poisoned.Header == nil {
		poisoned.Header = nats.Header{}
	}
	poisoned.Header.Set("Logbook-Poison-Reason", fmt.Sprintf("delivered %d times to relay group %s without an end", adv.Deliveries, group))
	if _, err := s.Conn.JS.PublishMsg(ctx, poisoned); err != nil {
		log.Error().Err(err).Msg("parking a run request on the poison stream")
		return
	}
	if err := stream.DeleteMsg(ctx, adv.StreamSeq); err != nil {
		log.Warn().Err(err).Msg("removing a poisoned run request from the work queue")
	}
	req, err := runbus.DecodeRunRequest(fromNATS(raw.Subject, raw.Header, raw.Data))
	if err != nil {
		log.Error().Err(err).Msg("a poisoned run request that is not one")
		return
	}
	if err := s.Fleet.Undeliverable(ctx, req.RunID, group, adv.Deliveries); err != nil {
		log.Error().Err(err).Str("run_id", req.RunID).Msg("failing a run no executor could run")
		return
	}
	log.Warn().Str("run_id", req.RunID).Str("group", group).Int("deliveries", adv.Deliveries).Msg("run request delivered too often; parked on the poison stream and the run failed")
}

func (s *FleetService) answerClaim(ctx context.Context, m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, subjectClaim)
	var req claimRequest
	reply := executor.ClaimReply{Status: executor.ClaimUnknown}
	err := json.Unmarshal(m.Data, &req)
	if err == nil {
		reply, err = s.Desk.Claim(ctx, id, req.Boot, req.Host, req.Group, req.RunID, true)
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
