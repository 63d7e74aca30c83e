package eventstore

import "github.com/logbookhq/logbook/domain"

// VerificationStream is where verifications of the chain are recorded.
const VerificationStream = "audit-chain"

// ChainVerified records a walk of the hash chain (Verify) and what it
// found, so the audit log says when the log was last verified, by whom,
// and the head it reached. The event itself comes after that head.
type ChainVerified struct {
	VerifyReport
	DurationMS int64 `json:"duration_ms"`
}

// EventType implements domain.Payload.
func (ChainVerified) EventType() string { return "ChainVerified" }

func init() { domain.Register[ChainVerified]() }
